"""A Redis connection for the request path: every request's script call, one write per loop turn.

Concurrent requests each queue an EVALSHA; the queue goes out as one write when the event loop
comes round, and replies (hiredis-parsed) are matched in order. Under load that is one syscall
for dozens of requests instead of one each, with none of a general client's per-call overhead.
Anything unanswered after `timeout` seconds fails (and the connection is replaced), so a stuck
Redis turns into 503s rather than hung requests.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import hashlib
import time
from typing import Any
from urllib.parse import unquote, urlsplit

import hiredis


class RedisPipeError(Exception):
    pass


def _pack(*parts: bytes) -> bytes:
    out = [b"*%d\r\n" % len(parts)]
    for part in parts:
        out.append(b"$%d\r\n%s\r\n" % (len(part), part))
    return b"".join(out)


def _b(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    return str(value).encode()


class _Protocol(asyncio.Protocol):
    def __init__(self, owner: RedisPipe) -> None:
        self.owner = owner
        self.reader = hiredis.Reader()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is not an asyncio.Transport

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        pending = self.owner.pending
        while True:
            reply = self.reader.gets()
            if reply is False:
                return
            if not pending:
                continue
            future, _ = pending.popleft()
            if not future.done():
                if isinstance(reply, hiredis.ReplyError):
                    future.set_exception(RedisPipeError(str(reply)))
                else:
                    future.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self.owner.lost(self)


class RedisPipe:
    def __init__(self, url: str, *, timeout: float = 2.0) -> None:
        parts = urlsplit(url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 6379
        self.db = int(parts.path.lstrip("/") or 0)
        self.username = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else None
        self.tls = parts.scheme == "rediss"
        self.timeout = timeout
        self.pending: collections.deque[tuple[asyncio.Future[Any], float]] = collections.deque()
        self._out: list[bytes] = []
        self._flush_scheduled = False
        self._proto: _Protocol | None = None
        self._connecting: asyncio.Future[_Protocol] | None = None
        self._watchdog: asyncio.TimerHandle | None = None
        self._closed = False

    async def _connect(self) -> _Protocol:
        loop = asyncio.get_running_loop()
        ssl = True if self.tls else None
        _, proto = await asyncio.wait_for(
            loop.create_connection(lambda: _Protocol(self), self.host, self.port, ssl=ssl), self.timeout
        )
        self._proto = proto
        setup: list[bytes] = []
        if self.password is not None:
            user = (_b(self.username),) if self.username else ()
            setup.append(_pack(b"AUTH", *user, _b(self.password)))
        if self.db:
            setup.append(_pack(b"SELECT", _b(self.db)))
        waits = [self._enqueue(cmd) for cmd in setup]
        for waiting in waits:
            await waiting
        if self._watchdog is None:
            self._watchdog = loop.call_later(self.timeout / 2, self._check)
        return proto

    async def ready(self) -> None:
        if self._proto is not None:
            return
        if self._connecting is None:
            self._connecting = asyncio.ensure_future(self._connect())
        try:
            await asyncio.shield(self._connecting)
        except BaseException:
            self._connecting = None
            raise
        self._connecting = None

    def _enqueue(self, packed: bytes) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self.pending.append((future, time.monotonic()))
        self._out.append(packed)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            loop.call_soon(self._flush)
        return future

    def _flush(self) -> None:
        self._flush_scheduled = False
        proto = self._proto
        if not self._out:
            return
        data = b"".join(self._out)
        self._out.clear()
        if proto is None or proto.transport is None or proto.transport.is_closing():
            self._fail_all(RedisPipeError("connection to Redis lost"))
            return
        proto.transport.write(data)

    def _fail_all(self, exc: Exception) -> None:
        while self.pending:
            future, _ = self.pending.popleft()
            if not future.done():
                future.set_exception(exc)

    def lost(self, proto: _Protocol) -> None:
        if self._proto is proto:
            self._proto = None
            self._fail_all(RedisPipeError("connection to Redis lost"))

    def _check(self) -> None:
        """Fail what waited too long and drop the connection: replies would no longer line up."""
        self._watchdog = None
        if self._closed:
            return
        if self.pending and time.monotonic() - self.pending[0][1] > self.timeout:
            proto = self._proto
            self._proto = None
            self._fail_all(RedisPipeError("Redis did not answer in time"))
            if proto is not None and proto.transport is not None:
                proto.transport.abort()
        self._watchdog = asyncio.get_running_loop().call_later(self.timeout / 2, self._check)

    async def execute(self, *parts: Any) -> Any:
        await self.ready()
        return await self._enqueue(_pack(*(_b(p) for p in parts)))

    def send_packed(self, packed: bytes) -> asyncio.Future[Any]:
        """Queue an already packed command (call `ready()` first)."""
        return self._enqueue(packed)

    async def close(self) -> None:
        self._closed = True
        if self._watchdog is not None:
            self._watchdog.cancel()
        proto, self._proto = self._proto, None
        self._fail_all(RedisPipeError("closed"))
        if proto is not None and proto.transport is not None:
            proto.transport.close()
        if self._connecting is not None:
            self._connecting.cancel()
            with contextlib.suppress(BaseException):
                await self._connecting


class Script:
    """EVALSHA with the script resent by EVAL when Redis does not know it (restart, flush)."""

    def __init__(self, pipe: RedisPipe, source: str) -> None:
        self.pipe = pipe
        self.source = source.encode()
        self.sha = hashlib.sha1(self.source, usedforsecurity=False).hexdigest().encode()
        self._evalsha = b"$7\r\nEVALSHA\r\n$40\r\n%s\r\n" % self.sha
        self._eval = b"$4\r\nEVAL\r\n$%d\r\n%s\r\n" % (len(self.source), self.source)

    async def __call__(self, keys: tuple[bytes, ...], args: tuple[bytes, ...]) -> Any:
        """Keys and arguments already as bytes: this is packed once per request."""
        tail = [b"$%d\r\n%s\r\n" % (len(x), x) for x in (b"%d" % len(keys), *keys, *args)]
        count = b"*%d\r\n" % (len(tail) + 2)
        pipe = self.pipe
        await pipe.ready()
        try:
            return await pipe.send_packed(b"".join((count, self._evalsha, *tail)))
        except RedisPipeError as exc:
            if not str(exc).startswith("NOSCRIPT"):
                raise
        return await pipe.send_packed(b"".join((count, self._eval, *tail)))
