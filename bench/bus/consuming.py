"""The bus scenario's consumer: the production Consumer with a handler that writes one row.

Runs in its own process like a consuming service's worker replica; all replicas share one tally of
committed effects (bench.procs.Link.add), so the n-th effect stops them all. Knobs: fixture.py.
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
    STREAM,
    WORKER_POOL,
    Target,
)
from bench.bus.roles import pool_for
from bench.procs import Link
from shared.bus import Consumer, ConsumerConfig, Registry
from shared.bus.consumer import Entry
from shared.bus.streams import ensure_group
from shared.db import Connection, Pool
from shared.events import Event, IdentityPing
from shared.http.app import redis_client


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


effects: Registry[Meter] = Registry()  # the realistic handler: one keyed insert per event, batched
bare: Registry[Meter] = Registry()  # no write of its own: what the bus itself costs


@effects.on_batch(IdentityPing)
async def write_effects(tx: Connection, batch: list[Event[Any]], meter: Meter) -> None:
    await tx.executemany(
        "INSERT INTO effect (event_id, tenant_id, note, occurred_at) VALUES ($1, $2, $3, $4)",
        [(e.id, e.tenant_id, e.data.note, e.occurred_at) for e in batch],
    )
    for event in batch:
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
    pool = await pool_for(target, "consumer", WORKER_POOL)
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
