"""The gateway's upstream HTTP/1.1 client against real sockets that misbehave on purpose."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from services.gateway.upstream import Pool, UpstreamError, UpstreamTimeout

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
HEAD = b"GET /x HTTP/1.1\r\nhost: test\r\n"


async def _serve(handler: Handler) -> tuple[asyncio.Server, int, list[int]]:
    connections: list[int] = []

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        try:
            await handler(reader, writer)
        finally:
            writer.close()

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1], connections


async def _read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return await reader.readexactly(int(line.split(b":")[1]))
    return b""


def _pool() -> Pool:
    return Pool(connect_timeout=2, keepalive=4)


async def test_keep_alive_connections_are_reused() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                body = await _read_request(reader)
            except asyncio.IncompleteReadError:
                return
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body))
            await writer.drain()

    server, port, connections = await _serve(handler)
    pool = _pool()
    async with server:
        for i in range(5):
            resp = await pool.request("127.0.0.1", port, HEAD, b"ping%d" % i, read_timeout=2)
            assert resp.status == 200
            assert resp.complete
            assert resp.take_body() == b"ping%d" % i
            resp.release()
        pool.close()
    assert len(connections) == 1


async def test_a_pooled_connection_closed_by_the_upstream_is_retried_on_a_fresh_one() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
        await writer.drain()
        # then close without saying so: the next request on this socket finds it dead

    server, port, connections = await _serve(handler)
    pool = _pool()
    async with server:
        first = await pool.request("127.0.0.1", port, HEAD, None, read_timeout=2)
        first.release()
        await asyncio.sleep(0.05)  # let the close arrive
        second = await pool.request("127.0.0.1", port, HEAD, None, read_timeout=2)
        assert second.status == 200
        assert second.take_body() == b"ok"
        second.release()
        pool.close()
    assert len(connections) == 2


async def test_body_delimited_by_the_end_of_the_connection() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nhello ")
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.write(b"world")
        await writer.drain()

    server, port, _ = await _serve(handler)
    pool = _pool()
    async with server:
        resp = await pool.request("127.0.0.1", port, HEAD, None, read_timeout=2)
        assert await resp.read() == b"hello world"
        resp.release()


async def test_chunked_response_streams_in_pieces() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
        for part in (b"alpha", b"beta", b"gamma"):
            writer.write(b"%x\r\n%s\r\n" % (len(part), part))
            await writer.drain()
            await asyncio.sleep(0.02)
        writer.write(b"0\r\n\r\n")
        await writer.drain()
        await reader.read()  # keep the connection open until the client is done

    server, port, _ = await _serve(handler)
    pool = _pool()
    async with server:
        resp = await pool.request("127.0.0.1", port, HEAD, None, read_timeout=2)
        parts = [chunk async for chunk in resp.chunks()]
        assert b"".join(parts) == b"alphabetagamma"
        assert len(parts) >= 2  # delivered as it came, not after the end
        resp.release()
        pool.close()


async def test_streamed_request_body_with_chunked_framing() -> None:
    received: list[bytes] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        assert b"transfer-encoding: chunked" in head
        body = b""
        while True:
            size = int((await reader.readuntil(b"\r\n")).strip(), 16)
            data = await reader.readexactly(size + 2)
            if size == 0:
                break
            body += data[:-2]
        received.append(body)
        writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
        await writer.drain()

    async def body() -> AsyncIterator[bytes]:
        for part in (b"x" * 70_000, b"y" * 10, b"z" * 100_000):
            yield part

    server, port, _ = await _serve(handler)
    pool = _pool()
    async with server:
        resp = await pool.request("127.0.0.1", port, HEAD, body(), read_timeout=2, chunked=True)
        assert resp.status == 204
        resp.release()
        pool.close()
    assert received == [b"x" * 70_000 + b"y" * 10 + b"z" * 100_000]


async def test_silent_upstream_times_out_and_refused_connection_fails() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # never answers

    server, port, _ = await _serve(handler)
    pool = _pool()
    async with server:
        with pytest.raises(UpstreamTimeout):
            await pool.request("127.0.0.1", port, HEAD, None, read_timeout=0.2)
    with pytest.raises(UpstreamError):
        await pool.request("127.0.0.1", port, HEAD, None, read_timeout=0.2)  # the server is gone


async def test_head_response_is_complete_without_a_body() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 1234\r\n\r\n")
        await writer.drain()
        await reader.read()

    server, port, _ = await _serve(handler)
    pool = _pool()
    async with server:
        resp = await pool.request(
            "127.0.0.1", port, b"HEAD /x HTTP/1.1\r\nhost: test\r\n", None, read_timeout=2, head_only=True
        )
        assert resp.status == 200
        assert resp.complete
        assert resp.content_length() == 1234
        resp.release()
        pool.close()
