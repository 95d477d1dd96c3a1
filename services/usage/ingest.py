"""The consumer of gateway.requests: one transaction per read stores every fresh batch at once.

The shared consumer records the batches' event ids in the inbox and hands the fresh ones to
consumers.ingest, which stores them in the same transaction with one COPY and one upsert per
rollup. A batch redelivered after a crash or a consumer's death is found in the inbox and
skipped, so every record counts once.
"""

from __future__ import annotations

import asyncio
from typing import Any

from redis.asyncio import Redis

from services.usage.consumers import requests
from services.usage.settings import UsageSettings
from shared.bus import Consumer, ConsumerConfig
from shared.db import Pool
from shared.events import GATEWAY_REQUESTS_STREAM
from shared.http.app import Resources

GROUP = "usage.requests"


def config(settings: UsageSettings, stream: str = GATEWAY_REQUESTS_STREAM) -> ConsumerConfig:
    return ConsumerConfig(
        group=GROUP,
        streams=(stream,),
        batch_size=settings.ingest_batch_entries,
        claim_idle_ms=settings.claim_idle_ms,
        claim_interval_s=settings.claim_interval_seconds,
    )


def consumer(redis: Redis, pool: Pool, settings: UsageSettings) -> Consumer[Any]:
    return Consumer(redis, pool, config(settings), requests, None)


async def run(resources: Resources, stop: asyncio.Event) -> None:
    """A WorkerSpec extra task."""
    assert resources.pool is not None
    settings = resources.settings
    assert isinstance(settings, UsageSettings)
    await consumer(resources.redis, resources.pool, settings).run(stop)
