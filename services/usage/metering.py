"""Gateway usage records → raw rows, rollups, monthly counts and key last-use (pure; no I/O).

Everything is aggregated in memory per transaction, so one transaction of thousands of
records costs one COPY and one upsert per table. Rollup rows are sorted by key: concurrent
consumers then lock shared rows in the same order and cannot deadlock each other.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import lru_cache
from typing import Any
from uuid import UUID

from services.usage.models import NO_KEY, DailyRollup, HourlyRollup, KeyUse
from shared.events import Event, RequestBatch

COPY_COLUMNS = (
    "batch_id",
    "at",
    "tenant_id",
    "request_id",
    "user_id",
    "api_key_id",
    "method",
    "route",
    "status",
    "latency_ms",
    "bytes_in",
    "bytes_out",
    "ip",
    "metered",
)
MAX_ROUTE = 200
MAX_BYTES = 2**62

# Per rollup key: calls, metered calls, 4xx, 5xx, latency sum, latency max, bytes in, bytes out.
_Acc = list[Any]


@dataclass
class Metered:
    rows: list[tuple[Any, ...]] = field(default_factory=list)
    hourly: list[HourlyRollup] = field(default_factory=list)
    daily: list[DailyRollup] = field(default_factory=list)
    monthly: list[tuple[UUID, date, int, int]] = field(default_factory=list)
    keys: list[KeyUse] = field(default_factory=list)


def meter(batches: list[Event[RequestBatch]]) -> Metered:
    out = Metered()
    rows = out.rows
    # Keyed by plain ints (UUID.int, hours since the epoch): hashing uuid.UUID runs Python code.
    hourly: dict[tuple[int, int, str, int], _Acc] = {}
    keys: dict[int, tuple[int, datetime]] = {}
    uuids: dict[int, UUID] = {0: NO_KEY}
    for event in batches:
        batch_id = event.id
        for r in event.data.records:
            at = r.at if r.at.tzinfo is UTC else utc(r.at)
            route = text(r.route, MAX_ROUTE) or "/"
            status = r.status if 0 <= r.status <= 999 else min(max(r.status, 0), 999)
            latency = float(r.latency_ms) if r.latency_ms >= 0 else 0.0
            bytes_in = r.bytes_in if 0 <= r.bytes_in <= MAX_BYTES else min(max(r.bytes_in, 0), MAX_BYTES)
            bytes_out = r.bytes_out if 0 <= r.bytes_out <= MAX_BYTES else min(max(r.bytes_out, 0), MAX_BYTES)
            rows.append(
                (
                    batch_id,
                    at,
                    r.tenant_id,
                    text(r.request_id, 128),
                    r.user_id,
                    r.api_key_id,
                    text(r.method, 16).upper(),
                    route,
                    status,
                    latency,
                    bytes_in,
                    bytes_out,
                    valid_ip(r.ip) if r.ip else None,
                    r.metered,
                )
            )
            tenant = r.tenant_id
            if tenant is None:
                continue  # anonymous calls count against nobody's quota
            t = tenant.int
            api_key = r.api_key_id
            k = api_key.int if api_key is not None else 0
            key = (t, int(at.timestamp()) // 3600, route, k)
            acc = hourly.get(key)
            if acc is None:
                acc = hourly[key] = [0, 0, 0, 0, 0.0, 0.0, 0, 0]
                uuids[t] = tenant
                if api_key is not None:
                    uuids[k] = api_key
            acc[0] += 1
            if r.metered:
                acc[1] += 1
            if status >= 500:
                acc[3] += 1
            elif status >= 400:
                acc[2] += 1
            acc[4] += latency
            if latency > acc[5]:  # noqa: PLR1730 - cheaper than max() on this path
                acc[5] = latency
            acc[6] += bytes_in
            acc[7] += bytes_out
            if k:
                seen = keys.get(k)
                if seen is None or at > seen[1]:
                    keys[k] = (t, at)
    _rollups(out, hourly, uuids)
    out.keys = [KeyUse(uuids[k], uuids[t], at) for k, (t, at) in sorted(keys.items())]
    return out


def _rollups(out: Metered, hourly: dict[tuple[int, int, str, int], _Acc], uuids: dict[int, UUID]) -> None:
    """Hourly rows as they are, daily and monthly ones summed from them; all sorted by key."""
    daily: dict[tuple[UUID, date, str, UUID], _Acc] = {}
    monthly: dict[tuple[UUID, date], list[int]] = {}
    hours: dict[int, datetime] = {}
    for key in sorted(hourly):
        acc = hourly[key]
        tenant, api_key = uuids[key[0]], uuids[key[3]]
        hour = hours.get(key[1])
        if hour is None:
            hour = hours[key[1]] = datetime.fromtimestamp(key[1] * 3600, UTC)
        route = key[2]
        out.hourly.append(HourlyRollup(tenant, hour, route, api_key, *acc))
        day = hour.date()
        total = daily.get((tenant, day, route, api_key))
        if total is None:
            daily[(tenant, day, route, api_key)] = list(acc)
        else:
            for i in (0, 1, 2, 3, 4, 6, 7):
                total[i] += acc[i]
            total[5] = max(total[5], acc[5])
        counts = monthly.setdefault((tenant, day.replace(day=1)), [0, 0])
        counts[0] += acc[0]
        counts[1] += acc[1]
    out.daily = [DailyRollup(*key, *acc) for key, acc in sorted(daily.items())]
    out.monthly = [(tenant, month, n, metered) for (tenant, month), (n, metered) in sorted(monthly.items())]


def text(value: str, limit: int) -> str:
    """Postgres text cannot hold NUL; one such record must not poison its whole batch."""
    return value[:limit] if "\x00" not in value else value.replace("\x00", "")[:limit]


def utc(at: datetime) -> datetime:
    if at.tzinfo is UTC:
        return at
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


@lru_cache(maxsize=8192)
def valid_ip(raw: str) -> str | None:
    """A malformed address is dropped rather than failing the whole batch."""
    try:
        return str(ipaddress.ip_address(raw))
    except ValueError:
        return None
