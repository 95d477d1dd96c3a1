"""Every request record counts exactly once when a worker is SIGKILLed and its batches are redelivered."""

from __future__ import annotations

import os
import signal
import socket
from datetime import UTC, datetime, timedelta

import asyncpg
import msgspec
from redis.asyncio import Redis

from services.usage.ingest import GROUP
from shared.events import GATEWAY_REQUESTS_STREAM
from shared.ids import uuid7
from shared.supervisor import Child, Supervisor
from tests.conftest import TEST_ROOT
from tests.platform import Platform
from tests.usage.helpers import batch, eventually, record, send_batches

BATCHES = 300
PER_BATCH = 250
VICTIMS = 3


def _consumer_name(child: Child) -> str:
    return f"{socket.gethostname()}-{child.proc.pid}"


async def _pending(bus: Redis, name: str) -> int:
    for consumer in await bus.xinfo_consumers(GATEWAY_REQUESTS_STREAM, GROUP):
        if consumer["name"].decode() == name:
            return int(consumer["pending"])
    return 0


async def _holds_entries(bus: Redis, name: str) -> bool:
    return await _pending(bus, name) > 0


async def _known(bus: Redis, name: str) -> bool:
    consumers = await bus.xinfo_consumers(GATEWAY_REQUESTS_STREAM, GROUP)
    return any(c["name"].decode() == name for c in consumers)


async def test_sigkilled_worker_loses_and_repeats_nothing(
    platform: Platform, bus: Redis, db: asyncpg.Connection
) -> None:
    tenant = uuid7()
    at = datetime.now(UTC) - timedelta(seconds=30)
    events = [
        batch([msgspec.structs.replace(record(tenant, at), metered=True) for _ in range(PER_BATCH)])
        for _ in range(BATCHES)
    ]
    total = BATCHES * PER_BATCH
    # Extra workers beside the platform's; small reads, so each holds entries most of the time.
    env = {**platform.env, "USAGE_INGEST_BATCH_ENTRIES": "5", "USAGE_CLAIM_IDLE_MS": "1000"}
    sup = Supervisor(env, log_dir=TEST_ROOT / "logs" / "usage-redelivery")
    killed: dict[str, list[bytes]] = {}  # consumer name -> entries it held when it died
    try:
        survivor = sup.spawn("usage-worker-survivor", "worker", "usage")
        victims = [sup.spawn(f"usage-worker-victim-{i}", "worker", "usage") for i in range(VICTIMS)]
        for child in [survivor, *victims]:
            await eventually(lambda c=child: _known(bus, _consumer_name(c)), 60, f"{child.name} reading")
        await send_batches(bus, events)
        await send_batches(bus, events[:20])  # the gateway retried some XADDs: same event ids again
        for victim in victims:
            name = _consumer_name(victim)
            await eventually(lambda n=name: _holds_entries(bus, n), what=f"{victim.name} holding entries")
            os.kill(victim.proc.pid, signal.SIGKILL)
            victim.proc.wait()
            held = await bus.xpending_range(GATEWAY_REQUESTS_STREAM, GROUP, "-", "+", 1000, consumername=name)
            killed[name] = [p["message_id"] for p in held]
        assert sum(len(ids) for ids in killed.values()) > 0  # the kills did strand entries

        async def stored() -> int:
            n = await db.fetchval("SELECT count(*) FROM usage_logs WHERE tenant_id = $1", tenant)
            return int(n)

        async def all_done() -> bool:
            summary = await bus.xpending(GATEWAY_REQUESTS_STREAM, GROUP)
            return await stored() >= total and summary["pending"] == 0

        await eventually(all_done, timeout=120, what="every batch stored and acknowledged")
        for name in killed:
            assert await _pending(bus, name) == 0  # what the dead held was claimed and handled
            await bus.xgroup_delconsumer(GATEWAY_REQUESTS_STREAM, GROUP, name)
    finally:
        sup.stop()
    counts = await db.fetchrow(
        "SELECT (SELECT count(*) FROM usage_logs WHERE tenant_id = $1) AS raw,"
        " (SELECT count(DISTINCT batch_id) FROM usage_logs WHERE tenant_id = $1) AS batches,"
        " (SELECT sum(calls) FROM usage_hourly WHERE tenant_id = $1) AS hourly,"
        " (SELECT sum(calls) FROM usage_daily WHERE tenant_id = $1) AS daily,"
        " (SELECT sum(metered_calls) FROM usage_monthly WHERE tenant_id = $1) AS monthly,"
        " (SELECT count(*) FROM inbox WHERE consumer_group = $2 AND event_id = ANY($3::uuid[])) AS inbox",
        tenant,
        GROUP,
        [e.id for e in events],
    )
    assert dict(counts) == {
        "raw": total,
        "batches": BATCHES,
        "hourly": total,
        "daily": total,
        "monthly": total,
        "inbox": BATCHES,
    }
