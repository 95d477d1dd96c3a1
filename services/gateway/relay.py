"""Moving bytes: request bodies in, upstream answers and problem documents out."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import msgspec

from services.gateway import errors
from services.gateway.edge import RESPONSE_DROP, Header
from services.gateway.exchange import Exchange
from services.gateway.upstream import Response, UpstreamError
from shared import context
from shared.errors import AppError
from shared.http.problems import PROBLEM_JSON, Problem

log = logging.getLogger("catalytic.gateway")

BUFFER_RESPONSE_BELOW = 1024 * 1024  # larger (or unsized) answers stream back
_NO_BODY_STATUS = frozenset({204, 304})
_problem_encoder = msgspec.json.Encoder()


async def read_body(receive: Any, ex: Exchange, max_body: int) -> bytes:
    chunks: list[bytes] = []
    total = 0
    more = True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise AppError("client went away")
        chunk = message.get("body", b"")
        total += len(chunk)
        if total > max_body:
            raise errors.PayloadTooLarge(f"bodies are limited to {max_body} bytes")
        chunks.append(chunk)
        more = message.get("more_body", False)
    ex.bytes_in = total
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def stream_body(
    receive: Any, ex: Exchange, max_body: int, too_large: list[bool]
) -> AsyncIterator[bytes]:
    more = True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise OSError("client went away")
        chunk = message.get("body", b"")
        ex.bytes_in += len(chunk)
        if ex.bytes_in > max_body:
            too_large.append(True)
            raise OSError("request body over the limit")
        if chunk:
            yield chunk
        more = message.get("more_body", False)


async def relay(ex: Exchange, send: Any, method: str, response: Response) -> None:
    status = response.status
    out: list[Header] = []
    length: int | None = None
    for name, value in response.headers:
        if name == b"content-length":
            try:
                length = int(value)
            except ValueError:
                length = None
        elif name not in RESPONSE_DROP:
            out.append((name, value))
    out += ex.headers
    if method == "HEAD" or status in _NO_BODY_STATUS:
        if length is not None and method == "HEAD":
            out.append((b"content-length", b"%d" % length))
        ex.status, ex.started = status, True
        await send({"type": "http.response.start", "status": status, "headers": out})
        await send({"type": "http.response.body", "body": b""})
        return
    if response.complete or (length is not None and length <= BUFFER_RESPONSE_BELOW):
        body = response.take_body() if response.complete else await response.read()
        out.append((b"content-length", b"%d" % len(body)))
        ex.status, ex.started = status, True
        await send({"type": "http.response.start", "status": status, "headers": out})
        await send({"type": "http.response.body", "body": body})
        ex.bytes_out = len(body)
        return
    if length is not None:
        out.append((b"content-length", b"%d" % length))
    ex.status, ex.started = status, True
    await send({"type": "http.response.start", "status": status, "headers": out})
    try:
        async for chunk in response.chunks():
            ex.bytes_out += len(chunk)
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
    except (UpstreamError, OSError) as exc:
        log.warning("upstream broke off a streamed response: %s", exc)
        raise  # the server closes the connection: the client sees a truncated body
    await send({"type": "http.response.body", "body": b""})


async def send_problem(ex: Exchange, send: Any, exc: AppError, path: str, status: int | None = None) -> None:
    if ex.started:
        return
    code = exc.code if status is None else "internal_error"
    status = status or exc.status
    problem = Problem(
        type=f"https://docs.catalytic.dev/errors/{code}",
        title=exc.title if status != 500 else "Internal server error",
        status=status,
        code=code,
        detail=exc.message if status != 500 else "The error was logged; quote the request id.",
        instance=path,
        request_id=context.request_id.get(),
    )
    body = _problem_encoder.encode(problem)
    headers = [
        (b"content-type", PROBLEM_JSON.encode()),
        (b"content-length", b"%d" % len(body)),
        *ex.headers,
        *((k.lower().encode(), v.encode()) for k, v in exc.headers.items()),
    ]
    if status == 401:
        headers.append((b"www-authenticate", b'Bearer realm="catalytic"'))
    ex.status, ex.started = status, True
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
    ex.bytes_out = len(body)
