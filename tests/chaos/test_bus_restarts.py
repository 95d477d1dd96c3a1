"""A bus consumer and an outbox relay keep running through a Postgres restart: events committed
before and after it are published and handled once it is back, each exactly once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest
from redis.asyncio import Redis

from shared.bus import Consumer, ConsumerConfig, OutboxRelay
from shared.db import Pool, create_pool
from shared.devstack import DevEnv, DevStack
from shared.events import DOMAIN_STREAMS
from shared.ids import uuid7
from shared.migrations import migrate
from tests.conftest import REPO
from tests.integration.bushelp import commit_pings, effect_counts, eventually
from tests.integration.busproc import effects_registry


@pytest.fixture
async def own_schema(peers: DevEnv) -> AsyncIterator[str]:
    """Like tests/conftest.py's `schema`, but dropped over a new connection (Postgres restarts)."""
    name = f"t_{uuid7().hex[-12:]}"
    await migrate(peers.database_url, name, REPO / "tests" / "data" / "no_migrations")
    conn = await asyncpg.connect(peers.database_url)
    await conn.execute(f"CREATE TABLE {name}.effects (event_id uuid NOT NULL, worker text)")
    await conn.close()
    yield name
    conn = await asyncpg.connect(peers.database_url)
    await conn.execute(f"DROP SCHEMA {name} CASCADE")
    await conn.close()


@pytest.fixture
async def own_pool(peers: DevEnv, own_schema: str) -> AsyncIterator[Pool]:
    pool = await create_pool(peers.database_url, schema=own_schema, application_name="tests", max_size=5)
    yield pool
    await pool.close()


async def _retry(make: object) -> object:
    for _ in range(100):  # the pool's connections are replaced after the restart
        try:
            return await make()  # type: ignore[operator]
        except Exception:  # noqa: BLE001 - any error while Postgres comes back
            await asyncio.sleep(0.2)
    raise AssertionError("Postgres never came back")


async def test_consumer_survives_a_postgres_restart(
    own_pool: Pool, redis: Redis, own_schema: str, stack: DevStack
) -> None:
    pool, schema = own_pool, own_schema
    await redis.flushdb()
    config = ConsumerConfig(
        group="restart-tests",
        streams=DOMAIN_STREAMS,
        name="survivor",
        block_ms=100,
        claim_idle_ms=500,
        claim_interval_s=0.2,
    )
    c = Consumer(redis, pool, config, effects_registry(0, "survivor"), None)
    stop = asyncio.Event()
    task = asyncio.create_task(c.run(stop))
    relay = OutboxRelay(pool, redis, schema=schema, batch_size=50, poll_interval=0.2)
    relaying = asyncio.create_task(relay.run(stop))
    try:
        before = await commit_pings(pool, 30)
        await asyncio.to_thread(stack.restart_postgres)
        await asyncio.sleep(1)
        for t in (task, relaying):
            assert not t.done(), t.exception() if t.done() else None
        after = await _retry(lambda: commit_pings(pool, 30))
        sent = {e.id for e in before} | {e.id for e in after}  # type: ignore[attr-defined]

        async def all_once() -> bool:
            counts = await effect_counts(pool)
            return set(counts) == sent

        await eventually(all_once, 60)
        counts = await effect_counts(pool)
        assert all(n == 1 for n in counts.values()), counts
        assert not task.done() and not relaying.done()
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(task, relaying), 10)
    print(f"\n[chaos] bus consumer through a Postgres restart: {len(sent)} events, each applied once")
