"""Request batches from the gateway become raw rows and rollups, each record counted once."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg
import httpx
import msgspec
from redis.asyncio import Redis

from services.usage.jobs import prune_usage_logs
from shared import jobs
from shared.events import USAGE_STREAM, ApiKeysUsed, UsageRecord, decode
from shared.ids import uuid7
from tests.usage.helpers import admin, batch, eventually, member, record, send_batches

ROUTES = ("/v1/jobs", "/v1/lattices", "/v1/jobs/{id}")
STATUSES = (200, 201, 404, 500, 429, 200, 503)


def _mixed(tenant: UUID, keys: list[UUID | None], now: datetime, n: int) -> list[UsageRecord]:
    start = now - timedelta(hours=30)
    times = (start, start + timedelta(minutes=10), start + timedelta(hours=1), now - timedelta(hours=1), now)
    out = []
    for i in range(n):
        rec = record(
            tenant,
            times[i % 5] + timedelta(seconds=i % 50),
            route=ROUTES[i % 3],
            key=keys[(i // 3) % len(keys)],
            status=STATUSES[i % 7],
            latency=0.5 * (i % 40),
            bytes_in=i,
            bytes_out=10 * i,
        )
        out.append(_metered(rec, i % 2 == 0))
    return out


def _metered(rec: UsageRecord, metered: bool) -> UsageRecord:
    return msgspec.structs.replace(rec, metered=metered)


COUNTS = ("calls", "metered_calls", "client_errors", "server_errors", "bytes_in", "bytes_out")
Buckets = dict[tuple[Any, ...], dict[str, Any]]


def _expected(records: list[UsageRecord], bucket: str, dim: str | None) -> Buckets:
    out: Buckets = defaultdict(lambda: dict.fromkeys(COUNTS, 0) | {"lat": 0.0, "max": 0.0})
    for r in records:
        start = r.at.replace(minute=0, second=0, microsecond=0)
        if bucket == "day":
            start = start.replace(hour=0)
        key: tuple[Any, ...] = (start.isoformat().replace("+00:00", "Z"),)
        if dim == "route":
            key += (r.route,)
        elif dim == "key":
            key += (str(r.api_key_id) if r.api_key_id else None,)
        acc = out[key]
        acc["calls"] += 1
        acc["metered_calls"] += int(r.metered)
        acc["client_errors"] += int(400 <= r.status < 500)
        acc["server_errors"] += int(r.status >= 500)
        acc["lat"] += r.latency_ms
        acc["max"] = max(acc["max"], r.latency_ms)
        acc["bytes_in"] += r.bytes_in
        acc["bytes_out"] += r.bytes_out
    return out


def _got(buckets: list[dict[str, Any]], dim: str | None) -> Buckets:
    out = {}
    for b in buckets:
        key: tuple[Any, ...] = (b["start"],)
        if dim == "route":
            key += (b["route"],)
        elif dim == "key":
            key += (b.get("api_key_id"),)
        out[key] = b
    return out


async def _usage(api: httpx.AsyncClient, tenant: UUID, **params: str) -> dict[str, Any]:
    resp = await api.get("/usage", params=params, headers=member(tenant))
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


async def test_batches_become_rollups_per_hour_day_route_and_key(
    api: httpx.AsyncClient, bus: Redis, db: asyncpg.Connection
) -> None:
    tenant, other = uuid7(), uuid7()
    keys: list[UUID | None] = [uuid7(), uuid7(), None]
    now = datetime.now(UTC) - timedelta(seconds=5)
    records = _mixed(tenant, keys, now, 420)
    noise = [record(other, now), record(None, now, route="/auth/login", ip="not-an-ip")]
    noise.append(record(other, now, route="/v1/\x00odd"))  # NUL: Postgres text refuses it
    batches = [batch(records[:150] + noise), batch(records[150:300]), batch(records[300:])]
    await send_batches(bus, [*batches, batches[0]])  # the gateway retried one XADD
    since = (now - timedelta(hours=31)).isoformat()
    until = (now + timedelta(hours=1)).isoformat()

    async def stored() -> bool:
        report = await _usage(api, tenant, granularity="hour", **{"from": since, "to": until})
        return bool(report["total_calls"] == len(records))

    await eventually(stored, what="all records stored")
    for granularity, dim in (("hour", "route"), ("day", "key"), ("hour", None), ("day", "route")):
        params = {"granularity": granularity, "from": since, "to": until}
        if dim:
            params["group_by"] = dim
        report = await _usage(api, tenant, **params)
        expected, got = _expected(records, granularity, dim), _got(report["buckets"], dim)
        assert set(got) == set(expected), (granularity, dim)
        for key, want in expected.items():
            bucket = got[key]
            for field in COUNTS:
                assert bucket[field] == want[field], (granularity, dim, key, field)
            assert abs(bucket["avg_latency_ms"] - want["lat"] / want["calls"]) < 0.01
            assert abs(bucket["max_latency_ms"] - want["max"]) < 0.01
    other_routes = await _usage(api, other, group_by="route", **{"from": since, "to": until})
    assert sorted(b["route"] for b in other_routes["buckets"]) == ["/v1/jobs", "/v1/odd"]

    # Rollups equal the sums of the raw rows, hour by hour, route by route, key by key.
    mismatches = await db.fetch(
        """
        WITH raw AS (
            SELECT tenant_id, date_trunc('hour', at) AS bucket, route,
                   coalesce(api_key_id, '00000000-0000-0000-0000-000000000000') AS api_key_id,
                   count(*) AS calls, count(*) FILTER (WHERE metered) AS metered_calls,
                   sum(bytes_in) AS bytes_in, sum(bytes_out) AS bytes_out,
                   sum(latency_ms::float8) AS latency_ms_sum
            FROM usage_logs WHERE tenant_id = $1 GROUP BY 1, 2, 3, 4)
        SELECT * FROM raw FULL JOIN usage_hourly h USING (tenant_id, bucket, route, api_key_id)
        WHERE (h.tenant_id = $1 OR raw.tenant_id = $1)
          AND (raw.calls IS DISTINCT FROM h.calls OR raw.metered_calls IS DISTINCT FROM h.metered_calls
               OR raw.bytes_in IS DISTINCT FROM h.bytes_in OR raw.bytes_out IS DISTINCT FROM h.bytes_out
               OR abs(raw.latency_ms_sum - h.latency_ms_sum) > 0.01)
        """,
        tenant,
    )
    assert mismatches == []
    sums = await db.fetchrow(
        "SELECT (SELECT count(*) FROM usage_logs WHERE tenant_id = $1) AS raw,"
        " (SELECT sum(calls) FROM usage_hourly WHERE tenant_id = $1) AS hourly,"
        " (SELECT sum(calls) FROM usage_daily WHERE tenant_id = $1) AS daily,"
        " (SELECT sum(calls) FROM usage_monthly WHERE tenant_id = $1) AS monthly,"
        " (SELECT sum(metered_calls) FROM usage_monthly WHERE tenant_id = $1) AS metered,"
        " (SELECT count(DISTINCT batch_id) FROM usage_logs WHERE tenant_id = $1) AS batches",
        tenant,
    )
    assert dict(sums) == {
        "raw": 420,
        "hourly": 420,
        "daily": 420,
        "monthly": 420,
        "metered": 210,
        "batches": 3,
    }
    anonymous = await db.fetchrow(
        "SELECT tenant_id, host(ip) AS ip FROM usage_logs WHERE batch_id = $1 AND route = '/auth/login'",
        batches[0].id,
    )
    assert dict(anonymous) == {"tenant_id": None, "ip": None}  # kept for operators; bad address dropped


async def test_api_key_last_use_is_published_in_batches(api: httpx.AsyncClient, bus: Redis) -> None:
    tenant, key1, key2 = uuid7(), uuid7(), uuid7()
    now = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
    first = [record(tenant, now, key=key1), record(tenant, now + timedelta(seconds=5), key=key2)]
    later = [record(tenant, now + timedelta(seconds=30), key=key1), record(tenant, now, key=key1)]
    start = "-"
    if await bus.exists(USAGE_STREAM):
        start = (await bus.xinfo_stream(USAGE_STREAM))["last-generated-id"]
    await send_batches(bus, [batch(first), batch(later)])
    latest: dict[str, datetime] = {}

    async def published() -> bool:
        for _, fields in await bus.xrange(USAGE_STREAM, min=start):
            event = decode(fields[b"event"])
            if event.tenant_id == tenant and isinstance(event.data, ApiKeysUsed):
                latest.update(event.data.last_used)
        return latest.get(str(key1)) == now + timedelta(seconds=30) and str(key2) in latest

    await eventually(published, what="usage.api_keys.used published")
    assert latest == {str(key1): now + timedelta(seconds=30), str(key2): now + timedelta(seconds=5)}

    async def audited() -> bool:
        page = await api.get("/audit-logs", params={"action": "usage.api_keys.used"}, headers=admin(tenant))
        return page.status_code == 200 and len(page.json()["items"]) >= 1

    await eventually(audited, what="the usage event reached the audit log")


async def test_retention_prunes_raw_rows_and_keeps_rollups(
    api: httpx.AsyncClient, bus: Redis, db: asyncpg.Connection, platform: Any
) -> None:
    tenant = uuid7()
    old = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0) - timedelta(days=40)
    recent = datetime.now(UTC) - timedelta(minutes=5)
    sent = batch([record(tenant, old + timedelta(seconds=i)) for i in range(5)] + [record(tenant, recent)])
    await send_batches(bus, [sent])

    async def raw(at_or_after: datetime, before: datetime) -> int:
        n = await db.fetchval(
            "SELECT count(*) FROM usage_logs WHERE tenant_id = $1 AND at >= $2 AND at < $3",
            tenant,
            at_or_after,
            before,
        )
        return int(n)

    async def stored() -> bool:
        return await raw(old, recent + timedelta(seconds=1)) == 6

    await eventually(stored, what="batch stored")
    queue = await jobs.connect(platform.env["REDIS_URL"], "usage")
    try:
        assert await jobs.enqueue(queue, prune_usage_logs.__name__, job_id=f"test-prune:{tenant}")
    finally:
        await queue.aclose()

    async def pruned() -> bool:
        return await raw(old - timedelta(days=1), old + timedelta(days=1)) == 0

    await eventually(pruned, what="old raw rows pruned")
    assert await raw(recent, recent + timedelta(seconds=1)) == 1  # within retention: kept
    day = old.date().isoformat()
    report = await _usage(api, tenant, **{"from": day, "to": (old + timedelta(days=1)).date().isoformat()})
    assert report["total_calls"] == 5  # the rollups outlive the raw rows
