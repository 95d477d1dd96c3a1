"""Producing what the gateway and the other services would, and reading it back through HTTP."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from redis.asyncio import Redis

from shared.events import GATEWAY_REQUESTS_STREAM, Event, RequestBatch, UsageRecord, encode, new_event
from shared.ids import uuid7
from tests.support import as_caller


def member(tenant: UUID, **kw: Any) -> dict[str, str]:
    return as_caller("usage", tenant_id=tenant, user_id=kw.pop("user_id", uuid7()), role="member", **kw)


def admin(tenant: UUID, **kw: Any) -> dict[str, str]:
    return as_caller("usage", tenant_id=tenant, user_id=kw.pop("user_id", uuid7()), role="admin", **kw)


def record(
    tenant: UUID | None,
    at: datetime | None = None,
    *,
    route: str = "/v1/jobs",
    key: UUID | None = None,
    status: int = 200,
    latency: float = 12.5,
    bytes_in: int = 100,
    bytes_out: int = 2_000,
    method: str = "GET",
    ip: str | None = "198.51.100.7",
) -> UsageRecord:
    return UsageRecord(
        request_id=uuid7().hex,
        at=at or datetime.now(UTC),
        tenant_id=tenant,
        user_id=None if key else uuid7(),
        api_key_id=key,
        method=method,
        route=route,
        status=status,
        latency_ms=latency,
        bytes_in=bytes_in,
        bytes_out=bytes_out,
        ip=ip,
    )


def batch(records: list[UsageRecord]) -> Event[RequestBatch]:
    return new_event(RequestBatch(records=records), tenant_id=None)


async def xadd(redis: Redis, stream: str, events: list[Event[Any]]) -> None:
    """What the gateway (for batches) and every relay (for domain events) do."""
    pipe = redis.pipeline(transaction=False)
    for event in events:
        pipe.xadd(stream, {"type": event.type, "event": encode(event)})
    await pipe.execute()


async def send_batches(redis: Redis, events: list[Event[RequestBatch]]) -> None:
    await xadd(redis, GATEWAY_REQUESTS_STREAM, events)


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 30.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not in time: {what or check}")
        await asyncio.sleep(0.05)


def listening_pid(port: int) -> int:
    """The process that listens on 127.0.0.1:`port` (the one serving, whoever started it)."""
    inodes = set()
    with open("/proc/net/tcp") as table:
        for line in table.readlines()[1:]:
            fields = line.split()
            if fields[1].endswith(f":{port:04X}") and fields[3] == "0A":  # 0A: LISTEN
                inodes.add(f"socket:[{fields[9]}]")
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
            if any(os.readlink(f"/proc/{pid}/fd/{fd}") in inodes for fd in fds):
                return int(pid)
        except OSError:
            continue  # gone, or not ours to look at
    raise AssertionError(f"nobody listens on port {port}")
