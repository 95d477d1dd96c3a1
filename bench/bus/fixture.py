"""The bus scenario's knobs, its event, and the schema/stream reset before each measurement."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg

from shared.bus.streams import DEAD_SUFFIX
from shared.events import IDENTITY_STREAM, Event, IdentityPing, new_event
from shared.http.app import redis_client
from shared.migrations import migrate

# Production settings (shared/worker.py: relay defaults, pool of 5; the consumer batch is 500 here
# where ConsumerConfig defaults to 200, see docs/benchmarks.md). They are stored with the results.
RELAY_BATCH = 1000
RELAY_POLL_S = 1.0  # LISTEN/NOTIFY wakes the relay; the poll only covers a lost notification
CONSUMER_BATCH = 500
CONSUMER_BLOCK_MS = 2000
CONSUMERS = 2  # consumer processes in the group (worker replicas)
WORKER_POOL = 5  # asyncpg pool of a service worker (shared/worker.py)
PRODUCER_POOL = 10  # asyncpg pool of a service API process (shared/db.py default)
PRODUCER_TASKS = 4  # concurrent producer transactions in the throughput runs
PRODUCER_TX = 500  # events per producer transaction in the throughput runs

SCHEMA = "bench_bus"
STREAM = IDENTITY_STREAM
GROUP = "bench.effects"
BARE_GROUP = "bench.bare"  # the same events again, through a handler that writes nothing
MIGRATIONS = Path(__file__).resolve().parent / "migrations"

_TENANT = uuid.UUID("01920000-0000-7000-8000-000000000001")
_NOTE = "benchmark event " + "x" * 48  # a payload of a realistic size (~330 bytes encoded)


@dataclass(frozen=True)
class Target:
    dsn: str
    redis_url: str
    schema: str = SCHEMA


def bench_event() -> Event[IdentityPing]:
    return new_event(IdentityPing(note=_NOTE), tenant_id=_TENANT)


async def reset(target: Target) -> None:
    """A fresh schema (outbox, inbox, effect) and an empty stream; a checkpoint so runs start alike."""
    conn = await asyncpg.connect(target.dsn)
    try:
        await conn.execute(f"DROP SCHEMA IF EXISTS {target.schema} CASCADE")
    finally:
        await conn.close()
    await migrate(target.dsn, target.schema, MIGRATIONS)
    conn = await asyncpg.connect(target.dsn)
    try:
        await conn.execute("CHECKPOINT")
    finally:
        await conn.close()
    redis = redis_client(target.redis_url)
    try:
        await redis.delete(STREAM, STREAM + DEAD_SUFFIX)
    finally:
        await redis.aclose()


async def counts(target: Target) -> dict[str, Any]:
    """Row counts after a run: every event published once, handled once (a correctness check)."""
    conn = await asyncpg.connect(target.dsn)
    try:
        row = await conn.fetchrow(
            f"SELECT (SELECT count(*) FROM {target.schema}.outbox) AS outbox,"
            f" (SELECT count(*) FROM {target.schema}.outbox WHERE published_at IS NULL) AS unsent,"
            f" (SELECT count(*) FROM {target.schema}.inbox) AS inbox,"
            f" (SELECT count(*) FROM {target.schema}.effect) AS effect"
        )
    finally:
        await conn.close()
    if row is None:
        raise RuntimeError("count query returned no row")
    return dict(row)
