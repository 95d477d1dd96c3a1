"""Usage records leave in batches: one XADD per flush (every few ms or at a size), never per request."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from redis.asyncio import Redis
from redis.exceptions import RedisError

from shared import events
from shared.events import GATEWAY_REQUESTS_STREAM, RequestBatch, UsageRecord

log = logging.getLogger("catalytic.gateway.usage")

STREAM_MAXLEN = 1_000_000


class UsageRecorder:
    def __init__(self, redis: Redis, *, flush_ms: int, batch_max: int, buffer_max: int) -> None:
        self._redis = redis
        self.flush_interval = flush_ms / 1000
        self.batch_max = batch_max
        self.buffer_max = buffer_max
        self._buffer: list[UsageRecord] = []
        self._wake = asyncio.Event()
        self.dropped = 0
        self.flushes = 0

    def add(self, record: UsageRecord) -> None:
        buffer = self._buffer
        buffer.append(record)
        if len(buffer) >= self.batch_max:
            self._wake.set()

    async def flush(self) -> None:
        while self._buffer:
            batch = self._buffer[: self.batch_max]
            event = events.new_event(RequestBatch(records=batch), tenant_id=None)
            try:
                await self._redis.xadd(
                    GATEWAY_REQUESTS_STREAM,
                    {"type": event.type, "event": events.encode(event)},
                    maxlen=STREAM_MAXLEN,
                    approximate=True,
                )
            except (RedisError, OSError) as exc:
                self._shed()
                log.warning("usage flush failed (%d records waiting): %s", len(self._buffer), exc)
                return
            del self._buffer[: len(batch)]
            self.flushes += 1

    def _shed(self) -> None:
        excess = len(self._buffer) - self.buffer_max
        if excess > 0:
            del self._buffer[:excess]
            self.dropped += excess
            log.error("usage buffer full: dropped %d oldest records", excess)

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.flush_interval)
            await self.flush()
        await self.flush()  # what came in before shutdown
