"""Long-running loops of the usage worker (WorkerSpec extra tasks): quota keeper, key-use publisher,
stream trimming. Each survives a Redis or Postgres outage and retries on its next round."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

import asyncpg
from redis.exceptions import RedisError

from services.usage import service
from services.usage.quota import QuotaKeeper
from services.usage.settings import UsageSettings
from shared.bus.streams import trim_consumed
from shared.db import Pool, transaction
from shared.events import GATEWAY_REQUESTS_STREAM
from shared.http.app import Resources

log = logging.getLogger("catalytic.usage.tasks")


async def every(seconds: float, stop: asyncio.Event, name: str, fn: Callable[[], Awaitable[object]]) -> None:
    while not stop.is_set():
        try:
            await fn()
        except (RedisError, OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.warning("%s failed, retrying: %s", name, exc)
        except Exception:  # a bug here must not stop ingestion; it is logged
            log.exception("%s failed", name)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), seconds)


def _parts(resources: Resources) -> tuple[Pool, UsageSettings]:
    assert resources.pool is not None
    assert isinstance(resources.settings, UsageSettings)
    return resources.pool, resources.settings


async def quota_keeper(resources: Resources, stop: asyncio.Event) -> None:
    pool, settings = _parts(resources)
    keeper = QuotaKeeper(resources.redis, pool, settings)
    await every(settings.quota_tick_seconds, stop, "quota keeper", keeper.tick)


async def key_use_publisher(resources: Resources, stop: asyncio.Event) -> None:
    pool, settings = _parts(resources)

    async def publish() -> None:
        while True:
            async with transaction(pool) as tx:
                if await service.publish_key_usage(tx) < 5_000:
                    return

    await every(settings.key_flush_seconds, stop, "key-use publisher", publish)


async def stream_trimmer(resources: Resources, stop: asyncio.Event) -> None:
    """Drop gateway batches every group has acknowledged (the gateway's MAXLEN is the backstop)."""
    _, settings = _parts(resources)

    async def trim() -> None:
        await trim_consumed(resources.redis, GATEWAY_REQUESTS_STREAM)

    await every(settings.trim_interval_seconds, stop, "stream trim", trim)
