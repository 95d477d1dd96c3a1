"""Transactional outbox: write events with the state change, publish them after commit.

A crash between XADD and marking rows sent publishes those rows again on the next pass;
consumers' inboxes absorb the duplicate, so effects stay exactly-once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

import asyncpg
from asyncpg import Record
from asyncpg.pool import PoolConnectionProxy
from redis.asyncio import Redis

from shared import events
from shared.bus.streams import trim_consumed
from shared.db import Connection, Pool
from shared.metrics import BUS_PUBLISHED

log = logging.getLogger("catalytic.bus.relay")

_INSERT = "INSERT INTO outbox (id, stream, type, payload) VALUES ($1, $2, $3, $4)"


async def add_event(tx: Connection, event: events.Event[Any]) -> None:
    """Queue an event for publication; `tx` must be the transaction of the state change."""
    await tx.execute(_INSERT, event.id, events.stream_of(event), event.type, events.encode(event))


async def add_events(tx: Connection, batch: list[events.Event[Any]]) -> None:
    await tx.executemany(_INSERT, [(e.id, events.stream_of(e), e.type, events.encode(e)) for e in batch])


class OutboxRelay:
    """Publishes unsent outbox rows of one schema to their streams."""

    def __init__(
        self,
        pool: Pool,
        redis: Redis,
        *,
        schema: str,
        batch_size: int = 1000,
        poll_interval: float = 1.0,
        stream_maxlen: int = 1_000_000,
        keep_sent_seconds: int = 86_400,
        trim_interval: float = 30.0,
    ) -> None:
        self.pool = pool
        self.redis = redis
        self.schema = schema
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.stream_maxlen = stream_maxlen
        self.keep_sent_seconds = keep_sent_seconds
        self.trim_interval = trim_interval
        self._wake = asyncio.Event()
        self._streams: set[str] = set()

    async def publish_batch(self) -> int:
        """Claim up to batch_size unsent rows, XADD them, mark them sent; return the count."""
        async with self.pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                "SELECT seq, stream, type, payload FROM outbox WHERE published_at IS NULL "
                "ORDER BY seq LIMIT $1 FOR UPDATE SKIP LOCKED",
                self.batch_size,
            )
            if not rows:
                return 0
            pipe = self.redis.pipeline(transaction=False)
            for row in rows:
                pipe.xadd(
                    row["stream"],
                    {"type": row["type"], "event": row["payload"]},
                    maxlen=self.stream_maxlen,
                    approximate=True,
                )
            await pipe.execute()
            await self._mark_sent(conn, [row["seq"] for row in rows])
        for row in rows:
            self._streams.add(row["stream"])
            BUS_PUBLISHED.labels(stream=row["stream"]).inc()
        return len(rows)

    async def _mark_sent(self, conn: Connection, seqs: list[int]) -> None:
        await conn.execute("UPDATE outbox SET published_at = now() WHERE seq = ANY($1::bigint[])", seqs)

    async def prune(self) -> int:
        async with self.pool.acquire() as conn:
            status = await conn.execute(
                "DELETE FROM outbox WHERE published_at < now() - make_interval(secs => $1)",
                float(self.keep_sent_seconds),
            )
        return int(status.split()[-1])

    async def run(self, stop: asyncio.Event) -> None:
        listener = await self._listen()
        last_maintenance = 0.0
        try:
            while not stop.is_set():
                # Clear before the pass: a NOTIFY that lands while we publish must wake the next one.
                self._wake.clear()
                try:
                    published = await self.publish_batch()
                    if time.monotonic() - last_maintenance > self.trim_interval:
                        last_maintenance = time.monotonic()
                        await self._maintain()
                        if _gone(listener):
                            listener = await self._listen()
                except (TimeoutError, OSError, ConnectionError, *PG_UNAVAILABLE) as exc:
                    log.warning("relay pass failed, retrying: %s", exc)
                    published = 0
                    await asyncio.sleep(self.poll_interval)
                if published == self.batch_size:
                    continue  # more waiting; don't sleep
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.poll_interval)
        finally:
            if listener is not None and not _gone(listener):
                with contextlib.suppress(OSError, *PG_UNAVAILABLE):
                    await listener.remove_listener(self._channel, self._on_notify)
                    await self.pool.release(listener)

    async def _listen(self) -> PoolConnectionProxy[Record] | None:
        """A dedicated connection LISTENs for inserts; polling covers a lost notification."""
        try:
            conn = await self.pool.acquire()
        except (OSError, ConnectionError, *PG_UNAVAILABLE) as exc:
            log.warning("relay runs on polling only: %s", exc)
            return None
        await conn.add_listener(self._channel, self._on_notify)
        return conn

    @property
    def _channel(self) -> str:
        return f"{self.schema}_outbox"

    def _on_notify(self, *_: object) -> None:
        self._wake.set()

    async def _maintain(self) -> None:
        await self.prune()
        for stream in self._streams:
            await trim_consumed(self.redis, stream)


# Postgres restarting or failing over: the relay polls on and LISTENs again once it answers.
PG_UNAVAILABLE = (asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError)


def _gone(listener: PoolConnectionProxy[Record] | None) -> bool:
    if listener is None:
        return True
    try:
        return listener.is_closed()
    except asyncpg.InterfaceError:  # the pool took it back after it broke
        return True
