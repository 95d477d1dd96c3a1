"""The usage service's records: what the API returns and what the repository reads and writes."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal
from uuid import UUID

import msgspec

Granularity = Literal["day", "hour"]
GroupBy = Literal["route", "key"]
ExportFormat = Literal["csv", "ndjson"]

NO_KEY = UUID(int=0)  # rollup key of calls made without an API key (a user's token)


# --- usage ----------------------------------------------------------------------------------


class UsageBucket(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    start: datetime
    route: str | None = None
    api_key_id: UUID | None = None
    calls: int
    metered_calls: int  # counted toward the monthly quota
    client_errors: int
    server_errors: int
    avg_latency_ms: float
    max_latency_ms: float
    bytes_in: int
    bytes_out: int


class UsageReport(msgspec.Struct, frozen=True, kw_only=True):
    start: datetime = msgspec.field(name="from")
    end: datetime = msgspec.field(name="to")
    granularity: Granularity
    group_by: GroupBy | None
    total_calls: int
    buckets: list[UsageBucket]


class UsageSummary(msgspec.Struct, frozen=True, kw_only=True):
    month: str  # YYYY-MM (UTC)
    period_start: datetime
    period_end: datetime  # when the counter starts again from zero
    plan: str
    limit: int  # calls per month included in the plan
    calls: int  # calls counted toward the quota this month (the gateway's live counter)
    recorded_calls: int  # of those, the ones the usage service has stored so far
    remaining: int
    percent_used: float
    overage_allowed: bool  # True: calls past the limit are billed, not refused


class HourlyRollup(msgspec.Struct, frozen=True, array_like=True):
    tenant_id: UUID
    bucket: datetime
    route: str
    api_key_id: UUID
    calls: int
    metered_calls: int
    client_errors: int
    server_errors: int
    latency_ms_sum: float
    latency_ms_max: float
    bytes_in: int
    bytes_out: int


class DailyRollup(msgspec.Struct, frozen=True, array_like=True):
    tenant_id: UUID
    day: date
    route: str
    api_key_id: UUID
    calls: int
    metered_calls: int
    client_errors: int
    server_errors: int
    latency_ms_sum: float
    latency_ms_max: float
    bytes_in: int
    bytes_out: int


class KeyUse(msgspec.Struct, frozen=True, array_like=True):
    api_key_id: UUID
    tenant_id: UUID
    last_used_at: datetime


# --- audit ----------------------------------------------------------------------------------


class AuditActor(msgspec.Struct, frozen=True, kw_only=True):
    kind: str
    id: str | None = None


class AuditTarget(msgspec.Struct, frozen=True, kw_only=True):
    type: str
    id: str


class AuditEntry(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID  # the event's id
    occurred_at: datetime
    action: str  # the event type, e.g. identity.api_key.revoked
    tenant_id: UUID | None
    actor: AuditActor
    target: AuditTarget | None
    correlation_id: str | None
    source_ip: str | None
    data: dict[str, Any]


class AuditPage(msgspec.Struct, frozen=True, kw_only=True):
    items: list[AuditEntry]
    next_cursor: str | None


class AuditRow(msgspec.Struct, frozen=True, kw_only=True):
    """One event as stored: the insert's parameters."""

    id: UUID
    tenant_id: UUID | None
    actor_kind: str
    actor_id: str | None
    action: str
    target_type: str | None
    target_id: str | None
    correlation_id: str | None
    source_ip: str | None
    data: dict[str, Any]
    occurred_at: datetime


class AuditFilter(msgspec.Struct, frozen=True, kw_only=True):
    actor: str | None = None  # an actor id (user or key), or an actor kind (system, stripe, ...)
    action: str | None = None  # exact, or a prefix ending in "*"
    start: datetime | None = None
    end: datetime | None = None
