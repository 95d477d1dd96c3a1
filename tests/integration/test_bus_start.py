"""A consumer that starts while Redis is away (restarting) waits for it instead of crashing."""

from __future__ import annotations

import asyncio
import socket

from redis.asyncio import Redis

from shared.bus import Consumer, ConsumerConfig
from shared.db import Pool
from shared.events import DOMAIN_STREAMS
from shared.http.app import redis_client
from tests.integration.busproc import effects_registry


def _dead_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed again: nothing listens there


async def test_consumer_waits_for_redis_at_start(pool: Pool, redis: Redis) -> None:
    away = redis_client(f"redis://127.0.0.1:{_dead_port()}/0")
    config = ConsumerConfig(group="start-tests", streams=DOMAIN_STREAMS, name="starter", block_ms=100)
    c = Consumer(away, pool, config, effects_registry(0, "starter"), None)
    stop = asyncio.Event()
    task = asyncio.create_task(c.run(stop))
    try:
        await asyncio.sleep(1.2)
        assert not task.done(), task.exception() if task.done() else None  # still waiting, not crashed
        c.redis = redis  # Redis is back
        for _ in range(100):
            groups = (
                await redis.xinfo_groups(DOMAIN_STREAMS[0]) if await redis.exists(DOMAIN_STREAMS[0]) else []
            )
            if any(g["name"] in (b"start-tests", "start-tests") for g in groups):
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("the consumer never created its group once Redis was back")
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)
        await away.aclose()
