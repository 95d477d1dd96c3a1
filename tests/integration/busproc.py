"""A consumer or relay in its own process, so tests can SIGKILL it at a chosen moment."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
from typing import Any

from shared.bus import Consumer, ConsumerConfig, OutboxRelay, Registry
from shared.db import Connection, create_pool
from shared.events import DOMAIN_STREAMS, Event, IdentityPing
from shared.http.app import redis_client


def effects_registry(delay: float, worker: str) -> Registry[Any]:
    registry = Registry[Any]()

    @registry.on_any
    async def record(tx: Connection, event: Event[Any], deps: Any) -> None:
        await tx.execute("INSERT INTO effects (event_id, worker) VALUES ($1, $2)", event.id, worker)
        if delay:
            await asyncio.sleep(delay)  # a slow effect: lets the test kill us mid-batch

    return registry


def batch_effects_registry(delay: float, worker: str) -> Registry[Any]:
    """The same effects written by a batch handler: one statement for the whole batch."""
    registry = Registry[Any]()

    @registry.on_batch(IdentityPing)
    async def record_all(tx: Connection, batch: list[Event[Any]], deps: Any) -> None:
        await tx.executemany(
            "INSERT INTO effects (event_id, worker) VALUES ($1, $2)", [(e.id, worker) for e in batch]
        )
        if delay:
            await asyncio.sleep(delay * len(batch))  # as slow as the per-event one, all at the end

    return registry


async def consume(args: argparse.Namespace) -> None:
    pool = await create_pool(args.database_url, schema=args.schema, application_name=args.name)
    redis = redis_client(args.redis_url)
    config = ConsumerConfig(
        group=args.group,
        streams=DOMAIN_STREAMS,
        name=args.name,
        batch_size=args.batch,
        claim_idle_ms=args.claim_idle_ms,
        claim_interval_s=0.2,
        block_ms=200,
    )
    make = batch_effects_registry if args.batch_handler else effects_registry
    await Consumer(redis, pool, config, make(args.delay, args.name), None).run(asyncio.Event())


async def relay_then_die(args: argparse.Namespace) -> None:
    """Publish one batch, then die by SIGKILL before the rows are marked sent (committed)."""

    class DyingRelay(OutboxRelay):
        async def _publish(self, by_stream: dict[str, list[bytes | str]]) -> None:
            await super()._publish(by_stream)
            os.kill(os.getpid(), signal.SIGKILL)

    pool = await create_pool(args.database_url, schema=args.schema, application_name="dying-relay")
    await DyingRelay(pool, redis_client(args.redis_url), schema=args.schema).publish_batch()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["consume", "relay-then-die"])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--schema", required=True)
    parser.add_argument("--group", default="tests")
    parser.add_argument("--name", default="c1")
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--claim-idle-ms", type=int, default=500)
    parser.add_argument("--batch-handler", action="store_true")
    args = parser.parse_args()
    asyncio.run(consume(args) if args.mode == "consume" else relay_then_die(args))


if __name__ == "__main__":
    main()
