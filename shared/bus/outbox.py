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
from shared.db import Connection, Pool, release_listener
from shared.metrics import BUS_PUBLISHED

log = logging.getLogger("catalytic.bus.relay")

_INSERT = "INSERT INTO outbox (id, stream, type, payload) VALUES ($1, $2, $3, $4)"


async def add_event(tx: Connection, event: events.Event[Any]) -> None:
    """Queue an event for publication; `tx` must be the transaction of the state change."""
    await tx.execute(_INSERT, event.id, events.stream_of(event), event.type, events.encode(event))


async def add_events(tx: Connection, batch: list[events.Event[Any]]) -> None:
    await tx.executemany(_INSERT, [(e.id, events.stream_of(e), e.type, events.encode(e)) for e in batch])


_CLAIM = (
    "UPDATE outbox SET published_at = now() WHERE seq IN (SELECT seq FROM outbox"
    " WHERE published_at IS NULL ORDER BY seq LIMIT $1 FOR UPDATE SKIP LOCKED)"
    " RETURNING seq, stream, type, payload"
)
# ARGV: maxlen, then type/payload pairs in stream order. Replies with the number added.
_XADD_ALL = """
local n = 0
for i = 2, #ARGV, 2 do
  redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'type', ARGV[i], 'event', ARGV[i + 1])
  n = n + 1
end
return n
"""


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
        self._xadd_all = redis.register_script(_XADD_ALL)

    async def publish_batch(self) -> int:
        """Claim up to batch_size unsent rows, XADD them, mark them sent; return the count.

        Claim and mark are one statement in a transaction that commits only after the XADDs:
        a failed or interrupted publish rolls the mark back, and the rows go out again."""
        async with self.pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(_CLAIM, self.batch_size)
            if not rows:
                return 0
            by_stream: dict[str, list[bytes | str]] = {}
            for row in sorted(rows, key=lambda r: r["seq"]):  # RETURNING keeps no order
                by_stream.setdefault(row["stream"], []).extend((row["type"], row["payload"]))
            await self._publish(by_stream)
        for stream, fields in by_stream.items():
            self._streams.add(stream)
            BUS_PUBLISHED.labels(stream=stream).inc(len(fields) // 2)
        return len(rows)

    async def _publish(self, by_stream: dict[str, list[bytes | str]]) -> None:
        """One script call per stream: the XADDs run inside Redis instead of being packed here.

        A schema's events nearly always go to one stream, so the calls are not pipelined."""
        for stream, fields in by_stream.items():
            await self._xadd_all(keys=[stream], args=[self.stream_maxlen, *fields])

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
                            await self._drop(listener)
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
                    await release_listener(self.pool, listener)

    async def _drop(self, listener: PoolConnectionProxy[Record] | None) -> None:
        """Hand a dead LISTEN connection back, so the pool replaces it instead of losing the slot."""
        if listener is not None:
            with contextlib.suppress(OSError, *PG_UNAVAILABLE):
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
