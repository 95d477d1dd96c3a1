"""Scenario `notifier`: an event on the stream -> the email accepted by the SMTP peer.

The system under test runs as in production: `catalytic worker notifier` in its own process
(consumers, outbox relay, arq jobs, dispatcher) against the bench's Postgres and Redis, and the
SMTP catcher of the dev stack (shared/devstack/mailcatcher.py) in another. This process is the
load generator: it XADDs `identity.user.registered` events the way the outbox relay publishes
them, each to its own recipient, and reads the catcher's files, whose names carry the moment
the message was accepted (DATA answered).

Latency: one event every 1/RATE s for SECONDS (open loop), from XADD to acceptance; the first
WARMUP_S are not counted. Throughput: BURST events XADDed at once, first XADD to last acceptance.
The issue's target (p99 <= 250 ms) is measured from a Stripe webhook at the gateway; this figure
is the notifier's part of it (the stream onward); billing's handling and the relay come before.
"""

from __future__ import annotations

import asyncio
import base64
import os
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg

from bench.common import REPO, Figure, free_port, percentile, single
from bench.procs import BenchError
from shared import events
from shared.devstack import DevEnv
from shared.devstack.mailcatcher import start_mailcatcher
from shared.events import UserRegistered, new_event
from shared.http.app import redis_client
from shared.migrations import migrate

RATE = 20.0  # events per second in the latency run
SECONDS = 16.0
WARMUP_S = 1.0
BURST = 1_000
REDIS_DB = 5  # apart from the bus scenario's streams
SCHEMA = "notifier"  # the worker runs as `catalytic worker notifier`, on its own schema
ROOT = REPO / ".dev" / "bench" / "notifier"
MIGRATIONS = REPO / "services" / "notifier" / "migrations"
READY_TIMEOUT = 60.0  # hang guards, not performance checks
DRAIN_TIMEOUT = 180.0
METRICS = tuple(
    f"notifier/{m}"
    for m in (
        "event_to_smtp_p50_ms",
        "event_to_smtp_p99_ms",
        "event_to_smtp_max_ms",
        "latency_rate_per_s",
        "emails_per_s",
        "worker_cpu_ms_per_email",
    )
)

SETTINGS: dict[str, Any] = {
    "latency_rate_per_s": RATE,
    "latency_seconds_measured": SECONDS - WARMUP_S,
    "burst_events": BURST,
    "event": "identity.user.registered (welcome email, one recipient each)",
    "path": "XADD -> consumer (inbox, render, seal, emails row) -> NOTIFY -> dispatcher -> arq job"
    " -> SMTP (new connection per email) -> catcher accepts DATA",
    "worker": "one `catalytic worker notifier` process (arq poll 0.1 s, 10 concurrent jobs)",
    "smtp_peer": "shared/devstack/mailcatcher.py (aiosmtpd), one process, writes one .eml per mail",
    "postgres": "devstack, fast=False (fsync, synchronous_commit on)",
}


def run(env: DevEnv) -> list[Figure]:
    # Figures from a busy machine mean little without this: it goes with the results.
    SETTINGS["load_average_1m_at_start"] = round(os.getloadavg()[0], 2)
    redis_url = env.redis_url.rsplit("/", 1)[0] + f"/{REDIS_DB}"
    asyncio.run(_reset(env.database_url, redis_url))
    shutil.rmtree(ROOT, ignore_errors=True)
    mail_dir = ROOT / "mail"
    mail_dir.mkdir(parents=True)
    port = free_port()
    catcher = start_mailcatcher("127.0.0.1", port, mail_dir, ROOT / "smtp-control.json", ROOT)
    worker = _start_worker(env.database_url, redis_url, port)
    try:
        return asyncio.run(_measure(redis_url, mail_dir, worker))
    finally:
        worker.terminate()
        try:
            worker.wait(20)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
        catcher.stop()


async def _measure(redis_url: str, mail_dir: Path, worker: subprocess.Popen[bytes]) -> list[Figure]:
    redis = redis_client(redis_url)
    try:
        await _wait_ready(redis, worker)
        warm = await _send(redis, "warm", 20, rate=50.0)
        await _accepted(mail_dir, warm, worker)
        paced = await _send(redis, "paced", round(RATE * SECONDS), rate=RATE)
        done = await _accepted(mail_dir, paced, worker)
        counted_from = min(paced.values()) + WARMUP_S
        latencies = [(done[a] - sent) * 1000 for a, sent in paced.items() if sent >= counted_from]
        cpu_before = _cpu_seconds(worker.pid)
        burst = await _send(redis, "burst", BURST, rate=None)
        burst_done = await _accepted(mail_dir, burst, worker)
        elapsed = max(burst_done.values()) - min(burst.values())
        cpu = _cpu_seconds(worker.pid) - cpu_before
    finally:
        await redis.aclose()
    return [
        single("notifier", "event_to_smtp_p50_ms", percentile(latencies, 50), "ms"),
        single("notifier", "event_to_smtp_p99_ms", percentile(latencies, 99), "ms"),
        single("notifier", "event_to_smtp_max_ms", max(latencies), "ms"),
        single(
            "notifier",
            "latency_rate_per_s",
            len(paced) / (max(paced.values()) - min(paced.values())),
            "events/s",
        ),
        single("notifier", "emails_per_s", BURST / elapsed, "emails/s"),
        # CPU the worker process spent per email in the burst: comparable across busy machines.
        single("notifier", "worker_cpu_ms_per_email", 1000 * cpu / BURST, "ms"),
    ]


def _cpu_seconds(pid: int) -> float:
    """utime + stime of a process, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _send(redis: Any, label: str, count: int, rate: float | None) -> dict[str, float]:
    """XADD `count` events (paced at `rate`, or all at once); returns recipient -> wall time sent."""
    sent: dict[str, float] = {}
    tenant = UUID(int=1)
    batch = [
        new_event(
            UserRegistered(user_id=UUID(int=i + 1), email=f"{label}-{i}@bench.test", tenant_name="Bench Co"),
            tenant_id=tenant,
        )
        for i in range(count)
    ]
    if rate is None:
        pipe = redis.pipeline(transaction=False)
        start = time.time()
        for e in batch:
            pipe.xadd(events.IDENTITY_STREAM, {"type": e.type, "event": events.encode(e)})
            sent[e.data.email] = start
        await pipe.execute()
        return sent
    start = time.monotonic()
    for i, e in enumerate(batch):
        delay = start + i / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        sent[e.data.email] = time.time()
        await redis.xadd(events.IDENTITY_STREAM, {"type": e.type, "event": events.encode(e)})
    return sent


async def _accepted(
    mail_dir: Path, sent: dict[str, float], worker: subprocess.Popen[bytes]
) -> dict[str, float]:
    """Wait until every recipient has its mail; returns recipient -> wall time the catcher accepted it."""
    found: dict[str, float] = {}
    seen: set[str] = set()
    deadline = time.monotonic() + DRAIN_TIMEOUT
    while len(found) < len(sent):
        if worker.poll() is not None:
            raise BenchError(f"the notifier worker exited with {worker.returncode}")
        for name, recipient in _new_mail(mail_dir, seen):
            if recipient in sent:
                if recipient in found:
                    raise BenchError(f"two mails to {recipient}: exactly-once broken")
                found[recipient] = _stamp(name)
        if time.monotonic() > deadline:
            raise BenchError(f"only {len(found)} of {len(sent)} mails arrived in {DRAIN_TIMEOUT:.0f}s")
        await asyncio.sleep(0.05)
    return found


def _new_mail(mail_dir: Path, seen: set[str]) -> list[tuple[str, str]]:
    """(file name, recipient) of the files not seen before."""
    fresh = []
    for path in mail_dir.glob("*.eml"):
        if path.name not in seen:
            seen.add(path.name)
            fresh.append((path.name, _recipient(path)))
    return fresh


def _recipient(path: Path) -> str:
    with path.open("rb") as handle:
        for line in handle:
            if line.startswith(b"X-Envelope-To:"):
                return line.split(b":", 1)[1].strip().decode()
    return ""


def _stamp(name: str) -> float:
    return datetime.strptime(name.split("-", 1)[0], "%Y%m%dT%H%M%S.%fZ").replace(tzinfo=UTC).timestamp()


async def _wait_ready(redis: Any, worker: subprocess.Popen[bytes]) -> None:
    """The worker is ready once its email consumer group exists."""
    deadline = time.monotonic() + READY_TIMEOUT
    while True:
        if worker.poll() is not None:
            raise BenchError(f"the notifier worker exited with {worker.returncode}")
        try:
            groups = await redis.xinfo_groups(events.IDENTITY_STREAM)
        except Exception:  # noqa: BLE001 - the stream does not exist yet
            groups = []
        if any(g["name"] in (b"notifier", "notifier") for g in groups):
            return
        if time.monotonic() > deadline:
            raise BenchError("the notifier worker did not create its consumer group")
        await asyncio.sleep(0.1)


async def _reset(dsn: str, redis_url: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
    finally:
        await conn.close()
    await migrate(dsn, SCHEMA, MIGRATIONS)
    redis = redis_client(redis_url)
    try:
        await redis.flushdb()
    finally:
        await redis.aclose()


def _start_worker(dsn: str, redis_url: str, smtp_port: int) -> subprocess.Popen[bytes]:
    key = "bench:" + base64.urlsafe_b64encode(os.urandom(32)).decode()
    env = {
        **os.environ,
        "APP_ENV": "test",
        "LOG_LEVEL": "WARNING",
        "DATABASE_URL": dsn,
        "REDIS_URL": redis_url,
        "SECRETS_KEY": key,
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(smtp_port),
        "SMTP_SECURITY": "none",
    }
    log = (ROOT / "worker.log").open("ab")
    return subprocess.Popen(
        [sys.executable, "-m", "shared.cli", "worker", "notifier"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
