"""Consumer-group reader with an inbox: at-least-once delivery, exactly-once effects.

One batch is handled in one transaction that first records the event ids in the inbox
(`ON CONFLICT DO NOTHING` singles out duplicates) and then runs the handlers; the
entries are acknowledged only after commit. Batch handlers (`Registry.on_batch`) get all
the batch's fresh events of their types at once, in that same transaction. If any handler
fails, the batch is rolled back and replayed one event per transaction, so one poison event
cannot hold back the others; a failing event stays pending and is retried through XAUTOCLAIM until it has
been delivered `max_deliveries` times, then it goes to `<stream>.dead`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import asyncpg
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from shared import events
from shared.bus import streams
from shared.bus.registry import Registry
from shared.db import Connection, Pool
from shared.metrics import BUS_CONSUMED, BUS_DEAD

log = logging.getLogger("catalytic.bus.consumer")

D = TypeVar("D")
Entry = tuple[bytes, dict[bytes, bytes]]


@dataclass(frozen=True)
class ConsumerConfig:
    group: str
    streams: tuple[str, ...]
    name: str = field(default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}")
    batch_size: int = 200
    block_ms: int = 2_000
    claim_idle_ms: int = 30_000
    claim_interval_s: float = 5.0
    max_deliveries: int = 5
    inbox_keep_days: int = 14


@dataclass
class _Decoded:
    entry_id: bytes
    event: events.Event[Any]


class Consumer(Generic[D]):
    def __init__(
        self, redis: Redis, pool: Pool, config: ConsumerConfig, registry: Registry[D], deps: D
    ) -> None:
        socket_timeout = redis.connection_pool.connection_kwargs.get("socket_timeout")
        if socket_timeout is not None and config.block_ms / 1000 >= socket_timeout:
            raise ValueError("block_ms must be shorter than the Redis client's socket_timeout")
        self.redis = redis
        self.pool = pool
        self.config = config
        self.registry = registry
        self.deps = deps
        self._acks: dict[str, list[bytes]] = {}  # committed, not yet acknowledged

    # --- loop -------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        cfg = self.config
        await self._start(stop)
        next_claim = 0.0
        while not stop.is_set():
            try:
                if time.monotonic() >= next_claim:
                    await self.recover()
                    next_claim = time.monotonic() + cfg.claim_interval_s
                await self.read_once(block_ms=cfg.block_ms)
            except ResponseError as exc:
                # Redis 7 answers a read blocked on a stream deleted under it (FLUSHDB, data
                # loss) with "UNBLOCKED the stream key no longer exists"; later reads get NOGROUP.
                if "NOGROUP" not in str(exc) and "UNBLOCKED" not in str(exc):
                    raise
                log.warning("consumer group %s missing (Redis lost its data?); recreating", cfg.group)
                await self._ensure_groups()
            except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
                log.warning("consumer %s: Redis unavailable (%s); retrying", cfg.name, exc)
                await asyncio.sleep(0.5)
            except (asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError) as exc:
                # Postgres restarting or failing over: entries read but not acknowledged stay
                # pending and are handled again once it answers.
                log.warning("consumer %s: Postgres unavailable (%r); retrying", cfg.name, exc)
                await asyncio.sleep(0.5)
        try:
            await self.flush_acks()
        except (RedisError, OSError) as exc:  # left pending: redelivered, and the inbox skips them
            log.warning("consumer %s: could not acknowledge on stop (%s)", cfg.name, exc)

    async def _start(self, stop: asyncio.Event) -> None:
        """Groups, then this consumer's own pending entries; Redis may be restarting as we start."""
        while not stop.is_set():
            try:
                await self._ensure_groups()
                await self._drain_own_pending()
                return
            except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
                log.warning("consumer %s: Redis unavailable at start (%s); retrying", self.config.name, exc)
                await asyncio.sleep(0.5)

    async def read_once(self, *, block_ms: int | None = None) -> int:
        """Read new entries for this consumer and handle them; return how many were read."""
        return await self._handle_reply(await self._read(">", block_ms))

    async def _read(self, start: str, block_ms: int | None) -> Any:
        """XREADGROUP, preceded in the same round trip by the XACKs of committed batches."""
        cfg = self.config
        if not self._acks:
            return await self.redis.xreadgroup(
                cfg.group, cfg.name, dict.fromkeys(cfg.streams, start), count=cfg.batch_size, block=block_ms
            )
        acks, self._acks = self._acks, {}
        pipe = self.redis.pipeline(transaction=False)
        for stream, ids in acks.items():
            pipe.xack(stream, cfg.group, *ids)
        pipe.xreadgroup(
            cfg.group, cfg.name, dict.fromkeys(cfg.streams, start), count=cfg.batch_size, block=block_ms
        )
        try:
            replies = await pipe.execute()
        except BaseException:
            for stream, ids in acks.items():  # not known to be acknowledged: try again next time
                self._acks.setdefault(stream, []).extend(ids)
            raise
        self._count_acked(acks)
        return replies[-1]

    async def flush_acks(self) -> None:
        """Acknowledge what was committed and not yet acknowledged (the loop does it on its next read)."""
        if self._acks:
            acks, self._acks = self._acks, {}
            pipe = self.redis.pipeline(transaction=False)
            for stream, ids in acks.items():
                pipe.xack(stream, self.config.group, *ids)
            await pipe.execute()
            self._count_acked(acks)

    def _count_acked(self, acks: dict[str, list[bytes]]) -> None:
        for stream, ids in acks.items():
            BUS_CONSUMED.labels(group=self.config.group, stream=stream).inc(len(ids))

    async def _drain_own_pending(self) -> None:
        """Entries delivered to this consumer name before a restart are handled first."""
        while True:
            reply = await self._read("0", None)
            if not any(entries for _, entries in reply or ()):
                return
            await self._handle_reply(reply)

    async def _handle_reply(self, reply: Any) -> int:
        total = 0
        for stream_name, entries in reply or ():
            total += len(entries)
            await self.handle(streams._s(stream_name), [e for e in entries if e[1] is not None])
        return total

    async def _ensure_groups(self) -> None:
        for stream in self.config.streams:
            await streams.ensure_group(self.redis, stream, self.config.group)

    # --- recovery ---------------------------------------------------------------------

    async def recover(self) -> None:
        """Claim entries idle too long (dead consumer or failed handler); dead-letter the hopeless."""
        cfg = self.config
        for stream in cfg.streams:
            start = "0-0"
            while True:
                start, live, gone = await streams.autoclaim(
                    self.redis, stream, cfg.group, cfg.name, cfg.claim_idle_ms, start, cfg.batch_size
                )
                for entry_id in gone:
                    await streams.dead_letter(
                        self.redis,
                        stream,
                        cfg.group,
                        entry_id,
                        None,
                        "trimmed",
                        "entry deleted before it was handled",
                        0,
                    )
                if live:
                    counts = await streams.delivery_counts(
                        self.redis, stream, cfg.group, [e[0] for e in live]
                    )
                    retry: list[Entry] = []
                    for entry in live:
                        tries = counts.get(entry[0], 1)
                        if tries > cfg.max_deliveries:
                            BUS_DEAD.labels(stream=stream, reason="max_deliveries").inc()
                            await streams.dead_letter(
                                self.redis,
                                stream,
                                cfg.group,
                                entry[0],
                                entry[1],
                                "max_deliveries",
                                f"failed {tries - 1} times",
                                tries,
                            )
                        else:
                            retry.append(entry)
                    await self.handle(stream, retry)
                if start == "0-0":
                    break
        await self._prune_inbox()

    async def _prune_inbox(self) -> None:
        async with self.pool.acquire() as conn:
            await conn.execute(
                "DELETE FROM inbox WHERE consumer_group = $1"
                " AND processed_at < now() - make_interval(days => $2)",
                self.config.group,
                self.config.inbox_keep_days,
            )

    # --- handling ---------------------------------------------------------------------

    async def handle(self, stream: str, entries: list[Entry]) -> None:
        if not entries:
            return
        decoded: list[_Decoded] = []
        done: list[bytes] = []
        for entry_id, fields in entries:
            try:
                event = events.decode(fields.get(b"event", b""))
            except events.UndecodableEvent as exc:
                BUS_DEAD.labels(stream=stream, reason=exc.reason).inc()
                await streams.dead_letter(
                    self.redis, stream, self.config.group, entry_id, fields, exc.reason, exc.detail, 1
                )
                continue
            if self.registry.wants(event.type):
                decoded.append(_Decoded(entry_id, event))
            else:
                done.append(entry_id)  # not for us: acknowledge without an inbox row
        if decoded:
            try:
                async with self.pool.acquire() as conn, conn.transaction():
                    await self._apply(conn, decoded)
                done.extend(d.entry_id for d in decoded)
            except Exception:
                if len(decoded) == 1:
                    log.exception("handler failed for %s; will retry", decoded[0].event.id)
                else:  # find the failing event: replay one per transaction
                    done.extend(await self._apply_one_by_one(decoded))
        if done:  # acknowledged with the next read, in the same round trip (see _read)
            self._acks.setdefault(stream, []).extend(done)

    async def _apply(self, conn: Connection, batch: list[_Decoded]) -> None:
        rows = await conn.fetch(
            "INSERT INTO inbox (consumer_group, event_id, type) "
            "SELECT $1, * FROM unnest($2::uuid[], $3::text[]) ON CONFLICT DO NOTHING RETURNING event_id",
            self.config.group,
            [d.event.id for d in batch],
            [d.event.type for d in batch],
        )
        fresh = {r["event_id"] for r in rows}
        todo: list[events.Event[Any]] = []
        for item in batch:
            if item.event.id in fresh:
                fresh.discard(item.event.id)  # a repeat within the same batch runs once
                todo.append(item.event)
        if todo:
            await self.registry.dispatch_many(conn, todo, self.deps)

    async def _apply_one_by_one(self, batch: list[_Decoded]) -> list[bytes]:
        ok: list[bytes] = []
        for item in batch:
            try:
                async with self.pool.acquire() as conn, conn.transaction():
                    await self._apply(conn, [item])
                ok.append(item.entry_id)
            except Exception:
                # Left pending: XAUTOCLAIM retries it after claim_idle_ms, then dead-letters it.
                log.exception("handler failed for %s (%s); will retry", item.event.id, item.event.type)
        return ok
