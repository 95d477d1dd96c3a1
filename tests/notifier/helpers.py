"""Helpers of the notifier tests: the mail catcher's files, HTTP receivers, events on the streams."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from uuid import UUID

import uvicorn
from redis.asyncio import Redis

from shared import events
from shared.events import Event, Payload, new_event
from shared.ids import uuid7
from tests.support import as_caller

RECEIVER_HOST = "127.0.0.2"


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 20.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met in time: {what}")
        await asyncio.sleep(0.05)


# --- mail -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Mailbox:
    directory: Path
    control: Path

    def to(self, address: str) -> list[EmailMessage]:
        found: list[EmailMessage] = []
        if not self.directory.exists():
            return found
        needle = address.lower().encode()
        for path in sorted(self.directory.glob("*.eml")):
            raw = path.read_bytes()
            if needle not in raw[:2048].lower():  # the envelope header comes first
                continue
            msg = message_from_bytes(raw, policy=policy.default)
            assert isinstance(msg, EmailMessage)
            if address.lower() in str(msg.get("X-Envelope-To", "")).lower():
                found.append(msg)
        return found

    async def wait(self, address: str, count: int = 1, timeout: float = 20.0) -> list[EmailMessage]:
        async def arrived() -> bool:
            return len(self.to(address)) >= count

        await eventually(arrived, timeout, f"{count} mail(s) to {address}")
        return self.to(address)

    def set_control(self, **conf: Any) -> None:
        self.control.write_text(json.dumps(conf))

    def clear_control(self) -> None:
        self.control.write_text("{}")


def bodies(msg: EmailMessage) -> tuple[str, str]:
    text = msg.get_body(("plain",))
    html = msg.get_body(("html",))
    assert text is not None and html is not None, "expected a text and an HTML part"
    assert isinstance(text, EmailMessage) and isinstance(html, EmailMessage)
    return text.get_content(), html.get_content()


def unique_address(label: str) -> str:
    return f"{label}-{uuid7().hex[-10:]}@example.test"


# --- events ---------------------------------------------------------------------------


async def emit(redis: Redis, event: Event[Any]) -> None:
    """XADD an event the way the outbox relay does."""
    await redis.xadd(events.stream_of(event), {"type": event.type, "event": events.encode(event)})


def event(data: Payload, tenant_id: UUID | None, event_id: UUID | None = None) -> Event[Any]:
    made = new_event(data, tenant_id=tenant_id)
    if event_id is None:
        return made
    return Event(
        id=event_id,
        type=made.type,
        version=made.version,
        occurred_at=made.occurred_at,
        tenant_id=made.tenant_id,
        actor=made.actor,
        data=data,
    )


def admin_of(tenant_id: UUID, role: str = "owner", **extra: Any) -> dict[str, str]:
    return as_caller("notifier", tenant_id=tenant_id, user_id=uuid7(), role=role, **extra)


# --- HTTP receivers -------------------------------------------------------------------


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    at: float
    path: str


@dataclass
class Receiver:
    """A real HTTP server that records every request and answers from a plan (then 200)."""

    plan: list[int] = field(default_factory=list)
    reply: bytes = b"ok"
    requests: list[Received] = field(default_factory=list)
    url: str = ""

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        self.requests.append(Received(headers, body, time.monotonic(), scope["path"]))
        status = self.plan.pop(0) if self.plan else 200
        await send(
            {"type": "http.response.start", "status": status, "headers": [(b"content-type", b"text/plain")]}
        )
        await send({"type": "http.response.body", "body": self.reply})

    async def wait(self, count: int, timeout: float = 20.0) -> list[Received]:
        async def arrived() -> bool:
            return len(self.requests) >= count

        await eventually(arrived, timeout, f"{count} request(s) at {self.url}")
        return self.requests


@asynccontextmanager
async def receiving(
    plan: list[int] | None = None, reply: bytes = b"ok", host: str = RECEIVER_HOST
) -> AsyncIterator[Receiver]:
    receiver = Receiver(plan=list(plan or []), reply=reply)
    with socket.socket() as probe:
        probe.bind((host, 0))
        port = int(probe.getsockname()[1])
    server = uvicorn.Server(
        uvicorn.Config(receiver, host=host, port=port, log_config=None, access_log=False, lifespan="off")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.02)
    receiver.url = f"http://{host}:{port}/hooks"
    try:
        yield receiver
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)
