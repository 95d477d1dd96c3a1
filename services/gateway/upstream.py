"""HTTP/1.1 to upstreams: pooled keep-alive connections, one write per request, streaming both ways.

A small client on asyncio.Protocol and httptools (the parser uvicorn uses) instead of a general
one: the request head and a small body leave in one write, a small response usually arrives in
one read and is handed over whole, large ones stream with back-pressure. A pooled connection
that the upstream closed while idle fails before any byte of an answer; such a request is sent
again once on a fresh connection when its body can be replayed.
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import AsyncIterator
from typing import Any

import httptools

Header = tuple[bytes, bytes]
_READ_HIGH_WATER = 256 * 1024  # buffered response bytes before we stop reading from the socket


class UpstreamError(Exception):
    """The upstream could not be reached or broke off (→ 502)."""


class UpstreamTimeout(UpstreamError):
    """Connecting or waiting for the answer took too long (→ 504)."""


class _Stale(UpstreamError):
    """A reused connection was closed before any byte of the answer: safe to send again."""


class Connection(asyncio.Protocol):
    def __init__(self, pool: Pool, key: tuple[str, int]) -> None:
        self.pool = pool
        self.key = key
        self.transport: Any = None
        self.parser = httptools.HttpResponseParser(self)
        self.closed = False
        self.reused = False
        self.idle_since = 0.0
        self._can_write = asyncio.Event()
        self._can_write.set()
        self._reset()

    def _reset(self) -> None:
        self.status = 0
        self.headers: list[Header] = []
        self.head: asyncio.Future[None] | None = None
        self.body: collections.deque[bytes] = collections.deque()
        self.buffered = 0
        self.complete = False
        self.keep_alive = False
        self.received_any = False
        self.error: Exception | None = None
        self.waiter: asyncio.Future[None] | None = None
        self.head_only = False
        self.paused = False

    # --- asyncio.Protocol ---
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.received_any = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(UpstreamError(f"unreadable response: {exc}"))
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._can_write.set()
        if self.status and not self.complete and not self._framed():
            self.complete = True  # a body without length or chunking ends where the connection does
            self.keep_alive = False
            self._wake()
            return
        if not self.complete:
            if self.received_any or not self.reused:
                self._fail(UpstreamError("connection closed before the response was complete"))
            else:
                self._fail(_Stale("pooled connection was closed"))

    def pause_writing(self) -> None:
        self._can_write.clear()

    def resume_writing(self) -> None:
        self._can_write.set()

    # --- httptools callbacks ---
    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        status = self.parser.get_status_code()
        if status < 200:
            return  # informational; the real head follows
        self.status = status
        self.keep_alive = self.parser.should_keep_alive()
        if self.head_only:
            self.complete = True
            self.keep_alive = False  # the parser would wait for a body HEAD never gets
        if self.head is not None and not self.head.done():
            self.head.set_result(None)

    def on_body(self, body: bytes) -> None:
        self.body.append(body)
        self.buffered += len(body)
        if self.buffered > _READ_HIGH_WATER and not self.paused and self.transport is not None:
            self.paused = True
            self.transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        if self.status == 0:  # end of an informational response
            self.headers = []
            return
        self.complete = True
        self._wake()

    # --- helpers ---
    def _framed(self) -> bool:
        return any(name in (b"content-length", b"transfer-encoding") for name, _ in self.headers)

    def _wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _fail(self, exc: Exception) -> None:
        self.error = exc
        if self.head is not None and not self.head.done():
            self.head.set_exception(exc)
            self.head.exception()  # retrieved: the caller sees it through `await`
        self._wake()


class Response:
    """The upstream's answer; `release()` returns the connection to the pool or closes it."""

    def __init__(self, conn: Connection, timeout: float) -> None:
        self._conn = conn
        self._timeout = timeout
        self.status = conn.status
        self.headers = conn.headers
        self._released = False

    @property
    def complete(self) -> bool:
        return self._conn.complete

    def content_length(self) -> int | None:
        for name, value in self.headers:
            if name == b"content-length":
                try:
                    return int(value)
                except ValueError:
                    return None
        return None

    def take_body(self) -> bytes:
        """All of the body, when complete."""
        body = self._conn.body
        data = body[0] if len(body) == 1 else b"".join(body)
        body.clear()
        return data

    async def read(self) -> bytes:
        parts = [chunk async for chunk in self.chunks()]
        return b"".join(parts)

    async def chunks(self) -> AsyncIterator[bytes]:
        conn = self._conn
        loop = asyncio.get_running_loop()
        while True:
            while conn.body:
                chunk = conn.body.popleft()
                conn.buffered -= len(chunk)
                if conn.paused and conn.buffered < _READ_HIGH_WATER // 2 and not conn.closed:
                    conn.paused = False
                    conn.transport.resume_reading()
                yield chunk
            if conn.complete:
                return
            if conn.error is not None:
                raise conn.error
            conn.waiter = loop.create_future()
            timer = loop.call_later(self._timeout, _expire, conn.waiter)
            try:
                await conn.waiter
            finally:
                timer.cancel()
                conn.waiter = None

    def release(self) -> None:
        if self._released:
            return
        self._released = True
        self._conn.pool.put_back(self._conn)


def _expire(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_exception(UpstreamTimeout("the upstream stopped sending"))


class Pool:
    """Idle keep-alive connections per (host, port), most recently used first."""

    def __init__(self, *, connect_timeout: float, keepalive: float, max_idle_per_host: int = 256) -> None:
        self.connect_timeout = connect_timeout
        self.keepalive = keepalive
        self.max_idle = max_idle_per_host
        self._idle: dict[tuple[str, int], list[Connection]] = {}
        self.opened = 0

    async def _acquire(self, key: tuple[str, int], tls: bool) -> Connection:
        idle = self._idle.get(key)
        now = time.monotonic()
        while idle:
            conn = idle.pop()
            if not conn.closed and now - conn.idle_since < self.keepalive:
                conn.reused = True
                return conn
            conn.transport.close()
        loop = asyncio.get_running_loop()
        try:
            _, conn = await asyncio.wait_for(
                loop.create_connection(
                    lambda: Connection(self, key), key[0], key[1], ssl=True if tls else None
                ),
                self.connect_timeout,
            )
        except TimeoutError:
            raise UpstreamTimeout(f"connecting to {key[0]}:{key[1]} timed out") from None
        except OSError as exc:
            raise UpstreamError(f"cannot connect to {key[0]}:{key[1]}: {exc.strerror or exc}") from None
        self.opened += 1
        return conn

    def put_back(self, conn: Connection) -> None:
        if conn.closed:
            return
        if not (conn.complete and conn.keep_alive and conn.error is None) or conn.body:
            conn.transport.close()
            return
        conn._reset()
        conn.reused = True
        conn.idle_since = time.monotonic()
        idle = self._idle.setdefault(conn.key, [])
        if len(idle) >= self.max_idle:
            conn.transport.close()
            return
        idle.append(conn)

    def close(self) -> None:
        for idle in self._idle.values():
            for conn in idle:
                conn.transport.close()
        self._idle.clear()

    async def request(
        self,
        host: str,
        port: int,
        head: bytes,
        body: bytes | AsyncIterator[bytes] | None,
        *,
        read_timeout: float,
        tls: bool = False,
        head_only: bool = False,
        chunked: bool = False,
    ) -> Response:
        """Send `head` (request line and headers, without the blank line's framing headers) and body.

        `head` must end with the header block's last CRLF; this adds the body framing and the blank
        line. A bytes body is sent in the same write as the head.
        """
        key = (host, port)
        for attempt in (1, 2):
            conn = await self._acquire(key, tls)
            try:
                return await self._exchange(conn, head, body, read_timeout, head_only, chunked)
            except _Stale:
                if attempt == 2 or not (body is None or isinstance(body, bytes)):
                    raise UpstreamError("the upstream closed the connection") from None
            except BaseException:
                if conn.transport is not None:
                    conn.transport.close()
                raise
        raise AssertionError("unreachable")

    async def _exchange(
        self,
        conn: Connection,
        head: bytes,
        body: bytes | AsyncIterator[bytes] | None,
        read_timeout: float,
        head_only: bool,
        chunked: bool,
    ) -> Response:
        loop = asyncio.get_running_loop()
        conn.head = loop.create_future()
        conn.head_only = head_only
        transport = conn.transport
        if body is None:
            transport.write(head + b"\r\n")
        elif isinstance(body, bytes):
            transport.write(b"%scontent-length: %d\r\n\r\n%s" % (head, len(body), body))
        else:
            transport.write(head + (b"transfer-encoding: chunked\r\n\r\n" if chunked else b"\r\n"))
            await self._send_stream(conn, body, chunked)
        timer = loop.call_later(read_timeout, _expire_head, conn)
        try:
            await conn.head
        finally:
            timer.cancel()
        return Response(conn, read_timeout)

    @staticmethod
    async def _send_stream(conn: Connection, body: AsyncIterator[bytes], chunked: bool) -> None:
        transport = conn.transport
        async for chunk in body:
            if conn.closed or conn.error is not None:
                break  # the upstream answered early or went away; its answer (or error) decides
            if chunked:
                transport.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            else:
                transport.write(chunk)
            if not conn._can_write.is_set():
                await conn._can_write.wait()
        if chunked and not conn.closed:
            transport.write(b"0\r\n\r\n")


def _expire_head(conn: Connection) -> None:
    head = conn.head
    if head is not None and not head.done():
        head.set_exception(UpstreamTimeout("the upstream did not answer in time"))
        head.exception()
