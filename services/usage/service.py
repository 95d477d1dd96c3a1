"""Domain logic of the usage service (no HTTP, no SQL)."""

from __future__ import annotations

import base64
import binascii
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import msgspec
from redis.asyncio import Redis

from services.usage import repository
from services.usage.audit import audit_row
from services.usage.errors import InvalidCursor, InvalidLimit, InvalidRange, InvalidTime, RangeTooLarge
from services.usage.metering import meter
from services.usage.models import (
    AuditFilter,
    AuditPage,
    Granularity,
    GroupBy,
    UsageReport,
    UsageSummary,
)
from services.usage.quota import month_of, next_month
from shared.bus import add_events
from shared.db import Connection
from shared.events import ApiKeysUsed, Event, RequestBatch, new_event
from shared.plans import plan as plan_of
from shared.plans import quota_key

MAX_SPAN = {"hour": timedelta(days=31), "day": timedelta(days=366)}
DEFAULT_SPAN = {"hour": timedelta(hours=24), "day": timedelta(days=30)}
PAGE_DEFAULT = 50
PAGE_MAX = 200
KEYS_PER_EVENT = 500


# --- ingestion ------------------------------------------------------------------------------


async def ingest(tx: Connection, batches: list[Event[RequestBatch]]) -> int:
    """Store the records of fresh batches (the inbox already singled out repeats); return how many."""
    metered = meter(batches)
    await repository.store_usage(tx, metered)
    return len(metered.rows)


async def record_audit(tx: Connection, batch: list[Event[Any]]) -> None:
    await repository.insert_audit(tx, [audit_row(event) for event in batch])


async def publish_key_usage(tx: Connection, limit: int = 5_000) -> int:
    """Hand identity the latest use of every key used since the last call: one event per tenant."""
    uses = await repository.take_unpublished_key_usage(tx, limit)
    by_tenant: dict[UUID, dict[str, datetime]] = defaultdict(dict)
    for use in uses:
        by_tenant[use.tenant_id][str(use.api_key_id)] = use.last_used_at
    events = []
    for tenant, last_used in sorted(by_tenant.items()):
        items = sorted(last_used.items())
        for i in range(0, len(items), KEYS_PER_EVENT):
            chunk = dict(items[i : i + KEYS_PER_EVENT])
            events.append(new_event(ApiKeysUsed(last_used=chunk), tenant_id=tenant))
    if events:
        await add_events(tx, events)
    return len(uses)


# --- usage reads ----------------------------------------------------------------------------


async def usage_report(
    tx: Connection,
    tenant_id: UUID,
    start: str | None,
    end: str | None,
    granularity: Granularity,
    group_by: GroupBy | None,
    now: datetime | None = None,
) -> UsageReport:
    """Buckets that start in [from, to), from the rollups; `from` is rounded down to a bucket."""
    to = parse_time(end, "to") if end else now or datetime.now(UTC)
    since = parse_time(start, "from") if start else to - DEFAULT_SPAN[granularity]
    if since >= to:
        raise InvalidRange()
    if to - since > MAX_SPAN[granularity]:
        days = MAX_SPAN[granularity].days
        raise RangeTooLarge(f"at most {days} days at granularity={granularity}")
    since = since.replace(minute=0, second=0, microsecond=0)
    if granularity == "day":
        since = since.replace(hour=0)
        midnight = to.replace(hour=0, minute=0, second=0, microsecond=0)
        end_at = midnight if midnight == to else midnight + timedelta(days=1)
    else:
        end_at = to
    buckets = await repository.usage_buckets(tx, tenant_id, since, end_at, granularity, group_by)
    return UsageReport(
        start=since,
        end=to,
        granularity=granularity,
        group_by=group_by,
        total_calls=sum(b.calls for b in buckets),
        buckets=buckets,
    )


async def usage_summary(
    tx: Connection, redis: Redis, tenant_id: UUID, plan_id: str | None, now: datetime | None = None
) -> UsageSummary:
    now = now or datetime.now(UTC)
    month, first_day = month_of(now)
    recorded = await repository.monthly_metered_calls(tx, tenant_id, first_day)
    live = await redis.get(quota_key(str(tenant_id), month))
    # The gateway's counter runs ahead of what is stored (batches in flight); right after a
    # Redis loss, before the rebuild, it runs behind. The larger one is the better estimate.
    calls = max(int(live or 0), recorded)
    plan = plan_of(plan_id)
    start = datetime(first_day.year, first_day.month, 1, tzinfo=UTC)
    limit = plan.calls_per_month
    return UsageSummary(
        month=month,
        period_start=start,
        period_end=next_month(start),
        plan=plan.id,
        limit=limit,
        calls=calls,
        recorded_calls=recorded,
        remaining=max(limit - calls, 0),
        percent_used=round(100 * calls / limit, 2) if limit else 100.0,
        overage_allowed=plan.overage_cents_per_1000 > 0,
    )


# --- audit log ------------------------------------------------------------------------------


def audit_filter(actor: str | None, action: str | None, start: str | None, end: str | None) -> AuditFilter:
    since = parse_time(start, "from") if start else None
    until = parse_time(end, "to") if end else None
    if since is not None and until is not None and since >= until:
        raise InvalidRange()
    return AuditFilter(actor=actor or None, action=action or None, start=since, end=until)


async def audit_page(
    tx: Connection, tenant_id: UUID, where: AuditFilter, cursor: str | None, limit: int | None
) -> AuditPage:
    """Newest first; the cursor is the (occurred_at, id) of the last entry shown."""
    size = PAGE_DEFAULT if limit is None else limit
    if not 1 <= size <= PAGE_MAX:
        raise InvalidLimit(f"limit must be between 1 and {PAGE_MAX}")
    after = decode_cursor(cursor) if cursor else None
    rows = await repository.list_audit(tx, tenant_id, where, after, size + 1, newest_first=True)
    more = len(rows) > size
    rows = rows[:size]
    next_cursor = encode_cursor(rows[-1].occurred_at, rows[-1].id) if more else None
    return AuditPage(items=rows, next_cursor=next_cursor)


_cursor_decoder = msgspec.json.Decoder(tuple[datetime, UUID])


def encode_cursor(at: datetime, event_id: UUID) -> str:
    raw = msgspec.json.encode((at, event_id))
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_cursor(cursor: str) -> tuple[datetime, UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor.encode() + b"=" * (-len(cursor) % 4))
        at, event_id = _cursor_decoder.decode(raw)
    except (binascii.Error, ValueError, msgspec.DecodeError):
        raise InvalidCursor("the cursor is not one this service handed out") from None
    if at.tzinfo is None:
        raise InvalidCursor("the cursor is not one this service handed out")
    return at, event_id


# --- helpers --------------------------------------------------------------------------------


def parse_time(raw: str, name: str) -> datetime:
    """ISO 8601 date or date-time; without an offset it is UTC."""
    try:
        value = datetime.fromisoformat(raw.strip())
    except ValueError:
        raise InvalidTime(f"`{name}` must be an ISO 8601 date or date-time, got {raw[:40]!r}") from None
    if not 2000 <= value.year <= 9000:
        raise InvalidTime(f"`{name}` is out of range")
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
