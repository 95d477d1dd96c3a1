"""Helpers for the bus tests."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from uuid import UUID

from shared.bus import OutboxRelay, add_events
from shared.db import Pool
from shared.devstack import DevEnv
from shared.events import Event, IdentityPing, new_event
from tests.conftest import scratch_redis_url

PROC = Path(__file__).with_name("busproc.py")


async def commit_pings(pool: Pool, count: int, note: str = "") -> list[Event[Any]]:
    batch = [new_event(IdentityPing(note=note or f"n{i}"), tenant_id=None) for i in range(count)]
    async with pool.acquire() as conn, conn.transaction():
        await add_events(conn, batch)
    return batch


async def publish_all(relay: OutboxRelay) -> int:
    total = 0
    while n := await relay.publish_batch():
        total += n
    return total


async def effect_counts(pool: Pool) -> dict[UUID, int]:
    rows = await pool.fetch("SELECT event_id, count(*) AS n FROM effects GROUP BY event_id")
    return {r["event_id"]: r["n"] for r in rows}


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


def spawn(mode: str, peers: DevEnv, schema: str, *extra: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            str(PROC),
            mode,
            "--database-url",
            peers.database_url,
            "--redis-url",
            scratch_redis_url(peers),
            "--schema",
            schema,
            *extra,
        ],
    )
