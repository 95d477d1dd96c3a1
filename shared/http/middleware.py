"""Pure ASGI middleware: request id, access log and metrics in one cheap pass."""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import Any

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from shared import context
from shared.metrics import HTTP_LATENCY, HTTP_REQUESTS

access = logging.getLogger("catalytic.access")
_VALID_ID = re.compile(rb"^[A-Za-z0-9._:-]{8,128}$")
_QUIET = frozenset({"/health", "/metrics", "/ready"})


def request_context(service: str) -> Any:
    def factory(app: ASGIApp) -> ASGIApp:
        async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != ScopeType.HTTP:
                await app(scope, receive, send)
                return
            method = scope["method"]
            rid = _incoming_id(scope) or uuid.uuid4().hex
            token = context.request_id.set(rid)
            ctoken = context.correlation_id.set(rid)
            started = time.perf_counter()
            status = 500
            header = (b"x-request-id", rid.encode())

            async def send_with_id(message: Message) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = message["status"]
                    message["headers"] = [*message.get("headers", ()), header]
                await send(message)

            try:
                await app(scope, receive, send_with_id)
            finally:
                elapsed = time.perf_counter() - started
                HTTP_REQUESTS.labels(service, method, str(status)).inc()
                HTTP_LATENCY.labels(service).observe(elapsed)
                if scope["path"] not in _QUIET and access.isEnabledFor(logging.INFO):
                    access.info(
                        "%s %s %d",
                        method,
                        scope["path"],
                        status,
                        extra={"status": status, "duration_ms": round(elapsed * 1000, 2)},
                    )
                context.request_id.reset(token)
                context.correlation_id.reset(ctoken)

        return middleware

    return factory


def _incoming_id(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"x-request-id" and _VALID_ID.match(value):
            return value.decode()
    return None
