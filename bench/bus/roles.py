"""The bus scenario's producer (load generator) and outbox relay; the consumer is in consuming.py.

Each runs in its own process on its own event loop, like a service's API process (producer) and
the worker of the producing service (relay). Knobs: fixture.py.
"""

from __future__ import annotations

import asyncio
import time

from bench.bus.fixture import (
    PRODUCER_POOL,
    PRODUCER_TASKS,
    PRODUCER_TX,
    RELAY_BATCH,
    RELAY_POLL_S,
    WORKER_POOL,
    Target,
    bench_event,
)
from bench.procs import Link
from shared.bus import OutboxRelay, add_event, add_events
from shared.db import Pool, create_pool
from shared.http.app import redis_client


async def pool_for(target: Target, role: str, size: int) -> Pool:
    return await create_pool(
        target.dsn, schema=target.schema, application_name=f"bench-{role}", min_size=size, max_size=size
    )


# --- producer -------------------------------------------------------------------------------


async def produce_bulk(link: Link, target: Target, n: int) -> None:
    """Insert n events with add_events, PRODUCER_TX per transaction, PRODUCER_TASKS at once."""
    pool = await pool_for(target, "producer", PRODUCER_TASKS)
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
    pool = await pool_for(target, "producer", PRODUCER_POOL)
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
    pool = await pool_for(target, "relay", WORKER_POOL)
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
