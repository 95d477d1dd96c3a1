"""The event bus against real Postgres and Redis: nothing lost, no effect doubled."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from typing import Any

import msgspec
import pytest
from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError

from shared.bus import Consumer, ConsumerConfig, OutboxRelay, Registry
from shared.db import Connection, Pool
from shared.devstack import DevEnv, DevStack
from shared.events import DOMAIN_STREAMS, IDENTITY_STREAM, Event, IdentityPing, new_event
from tests.integration.bushelp import commit_pings, effect_counts, eventually, publish_all, spawn
from tests.integration.busproc import effects_registry

DEAD = IDENTITY_STREAM + ".dead"


@pytest.fixture(autouse=True)
async def clean_redis(redis: Redis) -> AsyncIterator[None]:
    await redis.flushdb()
    yield


def consumer(redis: Redis, pool: Pool, registry: Registry[Any] | None = None, **cfg: Any) -> Consumer[Any]:
    config = ConsumerConfig(
        group="tests",
        streams=DOMAIN_STREAMS,
        name=cfg.pop("name", "in-proc"),
        block_ms=100,
        claim_interval_s=0.1,
        **cfg,
    )
    return Consumer(redis, pool, config, registry or effects_registry(0, config.name), None)


async def run_until(c: Consumer[Any], done: Any, timeout: float = 20.0) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(c.run(stop))
    try:
        await eventually(done, timeout)
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)


async def test_committed_events_are_published_and_applied_once(pool: Pool, redis: Redis, schema: str) -> None:
    sent = await commit_pings(pool, 120)
    relay = OutboxRelay(pool, redis, schema=schema, batch_size=50)
    assert await publish_all(relay) == 120
    assert await publish_all(relay) == 0  # marked sent: never published twice by a healthy relay
    assert await redis.xlen(IDENTITY_STREAM) == 120
    c = consumer(redis, pool)
    await c._ensure_groups()
    while await c.read_once():
        pass
    counts = await effect_counts(pool)
    assert counts == {e.id: 1 for e in sent}
    assert (await redis.xpending(IDENTITY_STREAM, "tests"))["pending"] == 0


async def test_rolled_back_state_change_publishes_nothing(pool: Pool, redis: Redis, schema: str) -> None:
    with pytest.raises(RuntimeError):
        async with pool.acquire() as conn, conn.transaction():
            from shared.bus import add_event

            await add_event(conn, new_event(IdentityPing(note="never"), tenant_id=None))
            raise RuntimeError("the state change failed")
    assert await publish_all(OutboxRelay(pool, redis, schema=schema)) == 0
    assert await redis.exists(IDENTITY_STREAM) == 0


async def test_relay_killed_between_xadd_and_mark_loses_and_doubles_nothing(
    peers: DevEnv, pool: Pool, redis: Redis, schema: str
) -> None:
    sent = await commit_pings(pool, 40)
    proc = spawn("relay-then-die", peers, schema)
    assert proc.wait(30) == -signal.SIGKILL
    assert await redis.xlen(IDENTITY_STREAM) == 40  # it did publish…
    assert await pool.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL") == 40  # …unmarked
    assert await publish_all(OutboxRelay(pool, redis, schema=schema)) == 40
    assert await redis.xlen(IDENTITY_STREAM) == 80  # every event now sits on the stream twice
    c = consumer(redis, pool)
    await c._ensure_groups()
    while await c.read_once():
        pass
    assert await effect_counts(pool) == {e.id: 1 for e in sent}  # the inbox absorbed the copies


@pytest.mark.parametrize("handler", ["per-event", "batch"])
async def test_sigkilled_consumer_mid_batch_is_finished_by_the_other(
    peers: DevEnv, pool: Pool, redis: Redis, schema: str, handler: str
) -> None:
    sent = await commit_pings(pool, 300)
    await publish_all(OutboxRelay(pool, redis, schema=schema))
    mode = ("--batch-handler",) if handler == "batch" else ()
    slow = spawn("consume", peers, schema, "--name", "doomed", "--delay", "0.02", "--batch", "100", *mode)
    steady = None
    try:

        async def doomed_holds_entries() -> bool:
            try:
                info = await redis.xpending(IDENTITY_STREAM, "tests")
            except ResponseError:
                return False  # its group is not created yet
            holders = {c["name"]: c["pending"] for c in info.get("consumers", [])}
            return holders.get(b"doomed", 0) > 0

        await eventually(doomed_holds_entries)
        await asyncio.sleep(0.3)  # mid-batch: effects inserted but not committed
        slow.send_signal(signal.SIGKILL)
        assert slow.wait(10) == -signal.SIGKILL
        steady = spawn("consume", peers, schema, "--name", "steady", "--claim-idle-ms", "300", *mode)

        async def all_applied() -> bool:
            return len(await effect_counts(pool)) == len(sent)

        await eventually(all_applied, 60)
        await eventually(lambda: _no_pending(redis), 20)
    finally:
        for p in (slow, steady):
            if p is not None and p.poll() is None:
                p.kill()
                p.wait()
    counts = await effect_counts(pool)
    assert counts == {e.id: 1 for e in sent}
    workers = {r["worker"] for r in await pool.fetch("SELECT DISTINCT worker FROM effects")}
    assert "steady" in workers


async def _no_pending(redis: Redis) -> bool:
    return int((await redis.xpending(IDENTITY_STREAM, "tests"))["pending"]) == 0


async def test_poison_event_goes_to_dead_letter_after_max_deliveries(
    pool: Pool, redis: Redis, schema: str
) -> None:
    registry = Registry[Any]()
    attempts: list[str] = []

    @registry.on(IdentityPing)
    async def fragile(tx: Connection, event: Event[Any], deps: Any) -> None:
        if event.data.note == "poison":
            attempts.append(event.data.note)
            raise ValueError("cannot handle this one")
        await tx.execute("INSERT INTO effects (event_id) VALUES ($1)", event.id)

    good = await commit_pings(pool, 5)
    bad = await commit_pings(pool, 1, note="poison")
    more = await commit_pings(pool, 5)
    await publish_all(OutboxRelay(pool, redis, schema=schema))
    c = consumer(redis, pool, registry, claim_idle_ms=50, max_deliveries=3)

    async def parked() -> bool:
        return await redis.exists(DEAD) == 1 and await _no_pending(redis)

    await run_until(c, parked)
    # Delivery 1 came with ten others: tried in the batch, then alone; deliveries 2 and 3 alone.
    assert len(attempts) == 4
    assert await effect_counts(pool) == {e.id: 1 for e in good + more}
    [(_, entry)] = await redis.xrange(DEAD)
    assert entry[b"reason"] == b"max_deliveries"
    assert entry[b"deliveries"] == b"4"
    assert msgspec.json.decode(entry[b"event"])["id"] == str(bad[0].id)


async def test_poison_event_in_a_batch_handler_is_isolated_and_dead_lettered(
    pool: Pool, redis: Redis, schema: str
) -> None:
    registry = Registry[Any]()
    batches: list[int] = []

    @registry.on_batch(IdentityPing)
    async def fragile_all(tx: Connection, batch: list[Event[Any]], deps: Any) -> None:
        batches.append(len(batch))
        await tx.executemany("INSERT INTO effects (event_id) VALUES ($1)", [(e.id,) for e in batch])
        if any(e.data.note == "poison" for e in batch):
            raise ValueError("cannot handle this one")

    good = await commit_pings(pool, 5)
    bad = await commit_pings(pool, 1, note="poison")
    more = await commit_pings(pool, 5)
    await publish_all(OutboxRelay(pool, redis, schema=schema))
    c = consumer(redis, pool, registry, claim_idle_ms=50, max_deliveries=3)

    async def parked() -> bool:
        return await redis.exists(DEAD) == 1 and await _no_pending(redis)

    await run_until(c, parked)
    # The batch of 11 fails as a whole (its writes rolled back), then each event runs alone;
    # the poison one fails alone twice more before it is parked.
    assert batches == [11] + [1] * 11 + [1, 1]
    assert await effect_counts(pool) == {e.id: 1 for e in good + more}
    [(_, entry)] = await redis.xrange(DEAD)
    assert msgspec.json.decode(entry[b"event"])["id"] == str(bad[0].id)


async def test_batch_handlers_get_fresh_events_once_by_type_in_order(
    pool: Pool, redis: Redis, schema: str
) -> None:
    registry = Registry[Any]()
    seen: list[list[str]] = []
    single: list[str] = []

    @registry.on_batch(IdentityPing)
    async def record_all(tx: Connection, batch: list[Event[Any]], deps: Any) -> None:
        seen.append([e.data.note for e in batch])
        await tx.executemany("INSERT INTO effects (event_id) VALUES ($1)", [(e.id,) for e in batch])

    @registry.on(IdentityPing)
    async def one(tx: Connection, event: Event[Any], deps: Any) -> None:
        single.append(event.data.note)

    sent = await commit_pings(pool, 6)
    await publish_all(OutboxRelay(pool, redis, schema=schema))
    from shared.events import encode

    # Two copies of the first event arrive again, one within the next batch.
    for e in (sent[0], sent[0]):
        await redis.xadd(IDENTITY_STREAM, {"type": e.type, "event": encode(e)})
    c = consumer(redis, pool, registry, batch_size=4)
    await c._ensure_groups()
    while await c.read_once():
        pass
    notes = [e.data.note for e in sent]
    assert seen == [notes[:4], notes[4:]]  # the copies were absorbed by the inbox
    assert single == notes
    assert await effect_counts(pool) == {e.id: 1 for e in sent}
    assert await _no_pending(redis)


async def test_malformed_entries_are_dead_lettered_and_processing_continues(
    pool: Pool, redis: Redis, schema: str
) -> None:
    good = new_event(IdentityPing(note="ok"), tenant_id=None)
    future = msgspec.to_builtins(new_event(IdentityPing(note="v9"), tenant_id=None))
    future["version"] = 9
    unknown = {**future, "version": 1, "type": "identity.from_the_future"}
    await redis.xadd(IDENTITY_STREAM, {"type": "x", "event": b"{not json"})
    await redis.xadd(IDENTITY_STREAM, {"type": "x", "event": msgspec.json.encode(future)})
    await redis.xadd(IDENTITY_STREAM, {"type": "x", "event": msgspec.json.encode(unknown)})
    await redis.xadd(IDENTITY_STREAM, {"no_event_field": "1"})
    from shared.events import encode

    await redis.xadd(IDENTITY_STREAM, {"type": good.type, "event": encode(good)})
    c = consumer(redis, pool)
    await c._ensure_groups()
    while await c.read_once():
        pass
    assert await effect_counts(pool) == {good.id: 1}
    reasons = [e[b"reason"] for _, e in await redis.xrange(DEAD)]
    assert reasons == [b"undecodable", b"newer_version", b"unknown_type", b"undecodable"]
    assert await _no_pending(redis)


async def test_redis_losing_its_data_recreates_the_group(
    stack: DevStack, pool: Pool, redis: Redis, schema: str
) -> None:
    relay = OutboxRelay(pool, redis, schema=schema)
    c = consumer(redis, pool)
    stop = asyncio.Event()
    task = asyncio.create_task(c.run(stop))
    try:
        before = await commit_pings(pool, 10)
        await publish_all(relay)
        await eventually(lambda: _count_is(pool, 10))
        stack.kill_redis_data()  # restart with an empty data dir: stream and group are gone
        after = await commit_pings(pool, 10)

        async def republished() -> bool:
            try:
                await publish_all(relay)
            except (RedisError, OSError):
                return False
            return await _count_is(pool, 20)

        await eventually(republished, 30)
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
    assert await effect_counts(pool) == {e.id: 1 for e in before + after}


async def test_redis_restart_with_aof_keeps_the_group_and_pending(
    stack: DevStack, pool: Pool, redis: Redis, schema: str
) -> None:
    sent = await commit_pings(pool, 20)
    await publish_all(OutboxRelay(pool, redis, schema=schema))
    c = consumer(redis, pool)
    await c._ensure_groups()
    await redis.xreadgroup("tests", "vanished", {IDENTITY_STREAM: ">"}, count=5)  # delivered, never acked
    stack.restart_redis()
    await eventually(lambda: _ping(redis))
    assert (await redis.xpending(IDENTITY_STREAM, "tests"))["pending"] == 5
    await run_until(consumer(redis, pool, claim_idle_ms=50), lambda: _count_is(pool, 20))
    assert await effect_counts(pool) == {e.id: 1 for e in sent}


async def _count_is(pool: Pool, n: int) -> bool:
    return len(await effect_counts(pool)) == n


async def _ping(redis: Redis) -> bool:
    try:
        return bool(await redis.ping())
    except (RedisError, OSError):
        return False
