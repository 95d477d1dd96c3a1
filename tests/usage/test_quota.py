"""Monthly quota counters: the summary, and the rebuild after Redis loses or rolls back its data."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg
import httpx
import msgspec
import pytest
from redis.asyncio import Redis

from services.usage import service
from services.usage.quota import HEARTBEAT, PLAN, QuotaKeeper, time_ms
from services.usage.settings import UsageSettings
from shared.db import Pool, create_pool
from shared.devstack import DevEnv
from shared.events import UsageRecord
from shared.http.app import redis_client
from shared.ids import uuid7
from shared.migrations import migrate
from shared.plans import quota_key
from shared.platform import service as service_info
from tests.usage.helpers import batch, eventually, member, record, send_batches


def metered(tenant: UUID, at: datetime, n: int) -> list[UsageRecord]:
    return [msgspec.structs.replace(record(tenant, at), metered=True) for _ in range(n)]


# --- through the platform -------------------------------------------------------------------


async def _summary(api: httpx.AsyncClient, tenant: UUID, plan: str) -> dict[str, Any]:
    resp = await api.get("/usage/summary", headers=member(tenant, plan=plan))
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


async def test_summary_shows_this_months_calls_against_the_plan(api: httpx.AsyncClient, bus: Redis) -> None:
    tenant = uuid7()
    now = datetime.now(UTC)
    month = now.strftime("%Y-%m")
    counter = quota_key(str(tenant), month)
    await bus.incrby(counter, 30)  # what the gateway counted for the metered calls below
    await send_batches(bus, [batch([*metered(tenant, now, 30), *[record(tenant, now) for _ in range(5)]])])

    async def stored() -> bool:
        return (await _summary(api, tenant, "starter"))["recorded_calls"] == 30

    await eventually(stored, what="calls stored")
    start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    end = (start + timedelta(days=32)).replace(day=1)
    assert await _summary(api, tenant, "starter") == {
        "month": month,
        "period_start": start.isoformat().replace("+00:00", "Z"),
        "period_end": end.isoformat().replace("+00:00", "Z"),
        "plan": "starter",
        "limit": 50_000,
        "calls": 30,
        "recorded_calls": 30,
        "remaining": 49_970,
        "percent_used": 0.06,
        "overage_allowed": True,
    }
    await bus.incrby(counter, 970)  # the gateway's counter runs ahead of what is stored
    free = await _summary(api, tenant, "no-such-plan")  # unknown plans are Free: never more than paid
    assert (free["plan"], free["limit"], free["calls"], free["recorded_calls"]) == ("free", 1_000, 1_000, 30)
    assert (free["remaining"], free["percent_used"], free["overage_allowed"]) == (0, 100.0, False)


async def test_counter_is_rebuilt_after_a_redis_flush(
    api: httpx.AsyncClient, bus: Redis, db: asyncpg.Connection
) -> None:
    tenant, other = uuid7(), uuid7()
    before = datetime.now(UTC) - timedelta(seconds=10)
    month = before.strftime("%Y-%m")
    await bus.incrby(quota_key(str(tenant), month), 120)
    await bus.incrby(quota_key(str(other), month), 40)
    unmetered = [record(tenant, before) for _ in range(9)]
    batches = [batch(metered(tenant, before, 120) + unmetered), batch(metered(other, before, 40))]
    await send_batches(bus, batches)

    async def stored() -> bool:
        return (await _summary(api, tenant, "starter"))["recorded_calls"] == 120

    await eventually(stored, what="calls stored")

    async def beat_past_records() -> bool:  # the keeper has seen Redis intact after them
        latest = await db.fetchval("SELECT max(seen_ms) FROM quota_beats")
        return latest is not None and latest > before.timestamp() * 1000 + 3_000

    await eventually(beat_past_records, what="a heartbeat after the records")
    await bus.flushdb()
    # The gateway goes on counting after the loss (from zero), and its records arrive later.
    await bus.incrby(quota_key(str(tenant), month), 15)
    await send_batches(bus, [batch(metered(tenant, datetime.now(UTC), 15))])

    async def rebuilt() -> bool:
        values = await bus.mget(quota_key(str(tenant), month), quota_key(str(other), month))
        return values == [b"135", b"40"]

    await eventually(rebuilt, what="counters rebuilt")
    plan = await bus.hgetall(PLAN)
    assert plan[b"lower"] == b"-1"  # a full loss: everything before the floor was given back

    async def settled() -> bool:
        return int(await bus.hget(PLAN, "until") or 0) < time_ms()

    await eventually(settled, what="rebuild window over")

    async def recorded_all() -> bool:
        return (await _summary(api, tenant, "starter"))["recorded_calls"] == 135

    await eventually(recorded_all, what="post-loss calls stored")
    assert await bus.mget(quota_key(str(tenant), month), quota_key(str(other), month)) == [b"135", b"40"]
    assert await bus.ttl(quota_key(str(tenant), month)) > 0  # expires like the gateway's counters
    assert (await _summary(api, tenant, "starter"))["calls"] == 135


# --- the keeper on its own: exact timelines -------------------------------------------------


@dataclass
class Rig:
    pool: Pool
    redis: Redis
    settings: UsageSettings

    def keeper(self) -> QuotaKeeper:
        return QuotaKeeper(self.redis, self.pool, self.settings)

    async def store(self, records: list[UsageRecord]) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            await service.ingest(conn, [batch(records)])


@pytest.fixture
async def rig(peers: DevEnv) -> AsyncIterator[Rig]:
    schema = f"t_usage_{uuid7().hex[-12:]}"
    await migrate(peers.database_url, schema, service_info("usage").migrations)
    pool = await create_pool(peers.database_url, schema=schema, application_name="tests", max_size=4)
    redis = redis_client(peers.redis_url.rsplit("/", 1)[0] + "/2")  # a scratch database of this slot
    await redis.flushdb()
    settings = UsageSettings(clock_skew_seconds=0, max_request_seconds=0, quota_settle_seconds=60)
    try:
        yield Rig(pool, redis, settings)
    finally:
        await redis.flushdb()
        await redis.aclose()
        await pool.close()
        conn = await asyncpg.connect(peers.database_url)
        await conn.execute(f"DROP SCHEMA {schema} CASCADE")
        await conn.close()


def _mid_month() -> datetime:
    """A fixed moment in the middle of the current month, so every time below stays in it."""
    return datetime.now(UTC).replace(day=15, hour=12, minute=0, second=0, microsecond=0)


def _ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


async def _timeline(rig: Rig, tenant: UUID, now: datetime) -> str:
    """Beats at -600, -300, -100 and -10 s; metered calls between them; the gateway's counter."""
    keeper = rig.keeper()
    for seconds in (600, 300, 100, 10):
        await keeper.tick(_ms(now - timedelta(seconds=seconds)))
    calls = {3 * 3600: 3, 700: 5, 400: 7, 200: 11, 50: 13, 5: 17}
    for ago, n in calls.items():
        await rig.store(metered(tenant, now - timedelta(seconds=ago), n))
    await rig.store(metered(tenant, now - timedelta(days=20), 19))  # last month: not this counter
    await rig.store([record(tenant, now - timedelta(seconds=60)) for _ in range(23)])  # not metered
    counter = quota_key(str(tenant), now.strftime("%Y-%m"))
    await rig.redis.set(counter, sum(calls.values()))
    return counter


async def test_full_loss_gives_back_what_was_counted_before_the_last_beat(rig: Rig) -> None:
    tenant, now = uuid7(), _mid_month()
    counter = await _timeline(rig, tenant, now)
    await rig.redis.flushdb()
    await rig.redis.incrby(counter, 2)  # the gateway counts on from zero
    # Two replicas notice at once; one plans, both top up: the counter gains the loss once.
    await asyncio.gather(rig.keeper().tick(_ms(now)), rig.keeper().tick(_ms(now)))
    # Calls before the last beat (-10 s) were lost: 3 + 5 + 7 + 11 + 13; the 17 after it are not known.
    assert await rig.redis.get(counter) == b"41"
    # Batches still in a gateway's buffer arrive late; passes within the settle time take them in.
    await rig.store(metered(tenant, now - timedelta(seconds=30), 4))
    for seconds in (1, 2, 3):
        await rig.keeper().tick(_ms(now + timedelta(seconds=seconds)))
    assert await rig.redis.get(counter) == b"45"
    await rig.store(metered(tenant, now - timedelta(seconds=30), 6))
    await rig.keeper().tick(_ms(now + timedelta(seconds=61)))  # settle time over: no more passes
    assert await rig.redis.get(counter) == b"45"
    assert await rig.redis.ttl(counter) > 0


async def test_rollback_gives_back_only_what_came_after_the_restored_state(rig: Rig) -> None:
    tenant, now = uuid7(), _mid_month()
    counter = await _timeline(rig, tenant, now)
    # Redis restarts from a file saved at -250 s: heartbeat of -300 s, counter of the calls before.
    await rig.redis.set(HEARTBEAT, _ms(now - timedelta(seconds=300)))
    await rig.redis.set(counter, 3 + 5 + 7)
    await rig.keeper().tick(_ms(now))
    # Given back: calls in [the beat after -300 s, the last beat) = [-100 s, -10 s): the 13.
    # The 11 at -200 s may have been in the file, so they are not given back: never counted twice.
    assert await rig.redis.get(counter) == b"28"
    await rig.keeper().tick(_ms(now + timedelta(seconds=1)))
    assert await rig.redis.get(counter) == b"28"


async def test_pruned_raw_rows_can_only_lower_what_is_given_back(rig: Rig, peers: DevEnv) -> None:
    tenant, now = uuid7(), _mid_month()
    counter = await _timeline(rig, tenant, now)
    async with rig.pool.acquire() as conn:
        await conn.execute("DELETE FROM usage_logs WHERE tenant_id = $1", tenant)
    await rig.redis.flushdb()
    await rig.keeper().tick(_ms(now))
    # Only the hours before the last beat's hour are known from the rollups: the 3 at -3 h.
    assert await rig.redis.get(counter) == b"3"


async def test_no_loss_no_writes(rig: Rig) -> None:
    tenant, now = uuid7(), _mid_month()
    counter = await _timeline(rig, tenant, now)
    for seconds in (0, 1, 2):
        assert await rig.keeper().tick(_ms(now + timedelta(seconds=seconds))) == 0
    assert await rig.redis.get(counter) == b"56"
    assert not await rig.redis.exists(PLAN)
