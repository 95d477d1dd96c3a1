"""The bus scenario's processes: producer (load generator), outbox relay, consumer.

Each runs in its own process on its own event loop, like a service's API process (producer) and
the workers of the producing and the consuming service (relay, consumer). Knobs: fixture.py.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from redis.asyncio import Redis

from bench.bus.fixture import (
    BARE_GROUP,
    CONSUMER_BATCH,
    CONSUMER_BLOCK_MS,
    GROUP,
    PRODUCER_POOL,
    PRODUCER_TASKS,
    PRODUCER_TX,
    RELAY_BATCH,
    RELAY_POLL_S,
    STREAM,
    WORKER_POOL,
    Target,
    bench_event,
)
from bench.procs import Link
from shared.bus import Consumer, ConsumerConfig, OutboxRelay, Registry, add_event, add_events
from shared.bus.consumer import Entry
from shared.bus.streams import ensure_group
from shared.db import Connection, Pool, create_pool
from shared.events import Event, IdentityPing
from shared.http.app import redis_client


async def _pool(target: Target, role: str, size: int) -> Pool:
    return await create_pool(
        target.dsn, schema=target.schema, application_name=f"bench-{role}", min_size=size, max_size=size
    )


# --- producer -------------------------------------------------------------------------------


async def produce_bulk(link: Link, target: Target, n: int) -> None:
    """Insert n events with add_events, PRODUCER_TX per transaction, PRODUCER_TASKS at once."""
    pool = await _pool(target, "producer", PRODUCER_TASKS)
    left = [n]

    async def producer() -> None:
        while left[0] > 0:
            size = min(PRODUCER_TX, left[0])
            left[0] -= size
            batch = [bench_event() for _ in range(size)]
            async with pool.acquire() as conn, conn.transaction():
                await add_events(conn, batch)

    try:
        link.ready()
        await link.wait_go()
        start, cpu = time.monotonic(), time.process_time()
        await asyncio.gather(*(producer() for _ in range(PRODUCER_TASKS)))
        link.result({"start": start, "end": time.monotonic(), "cpu": time.process_time() - cpu})
    finally:
        await pool.close()


async def produce_paced(link: Link, target: Target, rate: float, seconds: float) -> None:
    """One event per transaction at a steady rate (open loop: a slow commit never delays the next)."""
    pool = await _pool(target, "producer", PRODUCER_POOL)
    committed: dict[bytes, float] = {}

    async def one() -> None:
        event = bench_event()
        async with pool.acquire() as conn:
            await add_event(conn, event)  # outside a block: the INSERT is its own transaction
        committed[event.id.bytes] = time.monotonic()

    try:
        link.ready()
        await link.wait_go()
        running: set[asyncio.Task[None]] = set()
        start, cpu = time.monotonic(), time.process_time()
        for i in range(round(rate * seconds)):
            delay = start + i / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            task = asyncio.create_task(one())
            running.add(task)
            task.add_done_callback(running.discard)
        await asyncio.gather(*running)
        end = time.monotonic()
        link.result({"start": start, "end": end, "cpu": time.process_time() - cpu, "committed": committed})
    finally:
        await pool.close()


# --- relay ----------------------------------------------------------------------------------


async def relay(link: Link, target: Target, drain: int | None) -> None:
    """drain=n: publish n pre-filled rows back to back and time it; None: OutboxRelay.run until stop."""
    redis = redis_client(target.redis_url)
    pool = await _pool(target, "relay", WORKER_POOL)
    outbox = OutboxRelay(
        pool, redis, schema=target.schema, batch_size=RELAY_BATCH, poll_interval=RELAY_POLL_S
    )
    try:
        link.ready()
        await link.wait_go()
        start, cpu = time.monotonic(), time.process_time()
        if drain is None:
            stop = asyncio.Event()
            running = asyncio.create_task(outbox.run(stop))
            await link.wait_stop()
            stop.set()
            await asyncio.wait_for(running, RELAY_POLL_S + 5)
        else:
            total = 0
            while total < drain:
                published = await outbox.publish_batch()
                if not published:
                    raise RuntimeError(f"outbox ran dry after {total} of {drain} rows")
                total += published
        link.result({"start": start, "end": time.monotonic(), "cpu": time.process_time() - cpu})
    finally:
        await pool.close()
        await redis.aclose()


# --- consumer -------------------------------------------------------------------------------


class Meter:
    """Counts effects once their transaction committed; all consumers share one tally."""

    def __init__(self, link: Link, n: int) -> None:
        self.link = link
        self.n = n
        self.pending = 0
        self.handled_at: dict[bytes, float] = {}  # event id -> when its handler ran

    def handled(self, event: Event[Any]) -> None:
        self.pending += 1
        self.handled_at[event.id.bytes] = time.monotonic()

    def commit(self) -> None:
        if self.pending:
            self.link.add(self.pending, self.n)  # the n-th effect sets the crew's stop
            self.pending = 0


effects: Registry[Meter] = Registry()  # the realistic handler: one keyed insert per event
bare: Registry[Meter] = Registry()  # no write of its own: what the bus itself costs


@effects.on(IdentityPing)
async def write_effect(tx: Connection, event: Event[Any], meter: Meter) -> None:
    await tx.execute(
        "INSERT INTO effect (event_id, tenant_id, note, occurred_at) VALUES ($1, $2, $3, $4)",
        event.id,
        event.tenant_id,
        event.data.note,
        event.occurred_at,
    )
    meter.handled(event)


@bare.on(IdentityPing)
async def count_only(tx: Connection, event: Event[Any], meter: Meter) -> None:
    meter.handled(event)


class MeteredConsumer(Consumer[Meter]):
    """The production Consumer; it only learns when its batch committed and when to stop."""

    def __init__(
        self, redis: Redis, pool: Pool, config: ConsumerConfig, registry: Registry[Meter], meter: Meter
    ) -> None:
        super().__init__(redis, pool, config, registry, meter)
        self.stop = asyncio.Event()

    async def handle(self, stream: str, entries: list[Entry]) -> None:
        await super().handle(stream, entries)  # the batch's transaction has committed here
        self.deps.commit()
        if self.deps.link.stop.is_set():
            self.stop.set()  # seen by Consumer.run before its next blocking read


async def consume(link: Link, target: Target, n: int, report_latency: bool, write: bool = True) -> None:
    """Consumer.run until all consumers together committed n effects; reports when each ran.

    write=False runs a handler that writes nothing: the inbox row is then the only write."""
    redis = redis_client(target.redis_url)
    pool = await _pool(target, "consumer", WORKER_POOL)
    meter = Meter(link, n)
    group = GROUP if write else BARE_GROUP
    config = ConsumerConfig(
        group=group,
        streams=(STREAM,),
        name=link.name,
        batch_size=CONSUMER_BATCH,
        block_ms=CONSUMER_BLOCK_MS,
    )
    consumer = MeteredConsumer(redis, pool, config, effects if write else bare, meter)
    try:
        await ensure_group(redis, STREAM, group)
        link.ready()
        await link.wait_go()
        start, cpu = time.monotonic(), time.process_time()
        running = asyncio.create_task(consumer.run(consumer.stop))
        stopped = asyncio.create_task(link.wait_stop())
        await asyncio.wait([running, stopped], return_when=asyncio.FIRST_COMPLETED)
        consumer.stop.set()
        stopped.cancel()
        await asyncio.wait_for(running, CONSUMER_BLOCK_MS / 1000 + 5)  # an idle one ends its block
        handled_at = meter.handled_at if report_latency else {}
        link.result({"start": start, "cpu": time.process_time() - cpu, "handled_at": handled_at})
    finally:
        await pool.close()
        await redis.aclose()
