"""Scenario `usage`: gateway request batches -> usage rows and rollups; audit log queries at 1M rows.

The system under test runs as in production: `catalytic worker usage` processes (consumer group
on gateway.requests, COPY + rollups + inbox in one transaction per read, beside the audit
consumer, the outbox relay and the quota keeper) and `catalytic serve usage` (uvicorn), against
the bench's Postgres and Redis. This process is the load generator.

Ingestion: RECORDS request records in RequestBatch entries of BATCH_RECORDS (the gateway's
default batch size), spread over TENANTS tenants, ROUTES routes and KEYS keys each. The workers
are started and idle first; then every entry is XADDed at once (pipelined), and the rate is
RECORDS / (first XADD -> the last record committed), polled from usage_monthly. Median of
REPEATS runs per worker count, each checked for exactly-once (raw rows, rollups, inbox).
Worker CPU per record comes from /proc/<pid>/stat.

Audit: AUDIT_ROWS rows (one big tenant and many small ones), then QUERIES sequential requests
per query shape through HTTP with a gateway assertion, after WARMUP; p50/p99 per shape and over
all shapes, for the big tenant.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg
import httpx
import msgspec

from bench.common import REPO, Figure, free_port, percentile, repeated, single
from bench.procs import BenchError
from services.usage.ingest import GROUP
from services.usage.service import encode_cursor
from shared import events
from shared.auth import keys
from shared.auth.assertion import HEADER, AssertionSigner, Caller
from shared.devstack import DevEnv
from shared.events import GATEWAY_REQUESTS_STREAM, RequestBatch, UsageRecord, new_event
from shared.http.app import redis_client
from shared.ids import uuid7
from shared.migrations import migrate

RECORDS = 300_000
BATCH_RECORDS = 500  # services/gateway/settings.py usage_batch_max
TENANTS = 100
ROUTES = 8
KEYS = 3
REPEATS = 3
WORKER_COUNTS = (1, 2)
AUDIT_ROWS = 1_000_000
BIG_TENANT_ROWS = 400_000
SMALL_TENANT_ROWS = 10_000
AUDIT_DAYS = 90
QUERIES = 300
WARMUP = 30
PAGE = 50
REDIS_DB = 7  # apart from the other scenarios' streams
SCHEMA = "usage"  # the processes run as `catalytic worker|serve usage`, on their own schema
ROOT = REPO / ".dev" / "bench" / "usage"
MIGRATIONS = REPO / "services" / "usage" / "migrations"
READY_TIMEOUT = 60.0  # hang guards, not performance checks
DRAIN_TIMEOUT = 300.0
SHAPES = ("latest", "deep_cursor", "actor", "action", "action_prefix", "actor_kind", "one_day")
METRICS = (
    # The contract's name: ingestion with as many worker processes as cores (the largest count).
    "usage_ingest/rows_per_s",
    *(
        f"usage/ingest_{m}_{w}_worker{'s' if w > 1 else ''}"
        for w in WORKER_COUNTS
        for m in ("rows_per_s", "cpu_us_per_row")
    ),
    *(f"usage/audit_{shape}_{p}_ms" for shape in (*SHAPES, "query") for p in ("p50", "p99")),
)

SETTINGS: dict[str, Any] = {
    "records": RECORDS,
    "records_per_batch": BATCH_RECORDS,
    "tenants": TENANTS,
    "routes": ROUTES,
    "api_keys_per_tenant": KEYS,
    "repeats": REPEATS,
    "worker_processes": list(WORKER_COUNTS),
    "worker": "`catalytic worker usage` (USAGE_INGEST_BATCH_ENTRIES default: 50 entries per transaction)",
    "audit_rows": AUDIT_ROWS,
    "audit_big_tenant_rows": BIG_TENANT_ROWS,
    "audit_small_tenants": (AUDIT_ROWS - BIG_TENANT_ROWS) // SMALL_TENANT_ROWS,
    "audit_queries_per_shape": QUERIES,
    "audit_page_size": PAGE,
    "audit_client": "httpx, one request at a time, to `catalytic serve usage` (uvicorn, uvloop)",
    "postgres": "devstack, fast=False (fsync, synchronous_commit on)",
}


def run(env: DevEnv) -> list[Figure]:
    redis_url = env.redis_url.rsplit("/", 1)[0] + f"/{REDIS_DB}"
    ROOT.mkdir(parents=True, exist_ok=True)
    key_dir = ROOT / "keys"
    if not (key_dir / "assertion_private.pem").exists():
        keys.generate("test", key_dir, force=True)
    asyncio.run(_reset_schema(env.database_url, redis_url))
    figures: list[Figure] = []
    for workers in WORKER_COUNTS:
        rates: list[float] = []
        cpu: list[float] = []
        for _ in range(REPEATS):
            rate, cpu_us = _ingest_round(env.database_url, redis_url, workers)
            rates.append(rate)
            cpu.append(cpu_us)
        label = f"{workers}_worker{'s' if workers > 1 else ''}"
        figures.append(repeated("usage", f"ingest_rows_per_s_{label}", rates, "rows/s"))
        figures.append(repeated("usage", f"ingest_cpu_us_per_row_{label}", cpu, "us"))
        if workers == max(WORKER_COUNTS):
            figures.append(repeated("usage_ingest", "rows_per_s", rates, "rows/s"))
    figures += _audit(env.database_url, redis_url, key_dir)
    return figures


# --- ingestion ------------------------------------------------------------------------------


def _ingest_round(dsn: str, redis_url: str, workers: int) -> tuple[float, float]:
    entries = _entries()
    asyncio.run(_reset_data(dsn, redis_url))
    procs = [_spawn(dsn, redis_url, "worker") for _ in range(workers)]
    try:
        return asyncio.run(_ingest(dsn, redis_url, entries, procs))
    finally:
        _stop(procs)


def _entries() -> list[bytes]:
    rng = random.Random(7)
    tenants = [uuid7() for _ in range(TENANTS)]
    api_keys = {t: [uuid7() for _ in range(KEYS)] for t in tenants}
    routes = [f"/v1/route-{i}" for i in range(ROUTES)]
    now = datetime.now(UTC) - timedelta(minutes=5)
    out = []
    for b in range(RECORDS // BATCH_RECORDS):
        records = []
        for i in range(BATCH_RECORDS):
            tenant = rng.choice(tenants)
            records.append(
                UsageRecord(
                    request_id=f"{b:06d}{i:04d}{rng.getrandbits(64):016x}",
                    at=now + timedelta(milliseconds=b * 10 + i % 10),
                    tenant_id=tenant,
                    user_id=None,
                    api_key_id=rng.choice(api_keys[tenant]),
                    method="POST",
                    route=rng.choice(routes),
                    status=rng.choice((200, 200, 200, 201, 404, 429, 500)),
                    latency_ms=rng.uniform(2, 80),
                    bytes_in=rng.randint(100, 2_000),
                    bytes_out=rng.randint(200, 20_000),
                    ip=f"198.51.100.{rng.randint(1, 254)}",
                    metered=True,
                )
            )
        out.append(events.encode(new_event(RequestBatch(records=records), tenant_id=None)))
    return out


async def _ingest(
    dsn: str, redis_url: str, entries: list[bytes], procs: list[subprocess.Popen[bytes]]
) -> tuple[float, float]:
    redis = redis_client(redis_url)
    conn = await asyncpg.connect(dsn, server_settings={"search_path": SCHEMA})
    try:
        await _wait_consumers(redis, procs)
        cpu_before = sum(_cpu_seconds(p.pid) for p in procs)
        start = time.monotonic()
        pipe = redis.pipeline(transaction=False)
        for raw in entries:
            pipe.xadd(GATEWAY_REQUESTS_STREAM, {"type": RequestBatch.TYPE, "event": raw})
        await pipe.execute()
        deadline = start + DRAIN_TIMEOUT
        while await conn.fetchval("SELECT coalesce(sum(calls), 0) FROM usage_monthly") < RECORDS:
            _check_alive(procs)
            if time.monotonic() > deadline:
                raise BenchError(f"records not stored within {DRAIN_TIMEOUT:.0f}s")
            await asyncio.sleep(0.02)
        elapsed = time.monotonic() - start
        cpu = sum(_cpu_seconds(p.pid) for p in procs) - cpu_before
        await _check_once(conn, len(entries))
    finally:
        await conn.close()
        await redis.aclose()
    return RECORDS / elapsed, 1e6 * cpu / RECORDS


async def _wait_consumers(redis: Any, procs: list[subprocess.Popen[bytes]]) -> None:
    """Ready once every worker has read from the group (an XREADGROUP registers the consumer)."""
    deadline = time.monotonic() + READY_TIMEOUT
    names = {f"{socket.gethostname()}-{p.pid}" for p in procs}
    while True:
        _check_alive(procs)
        try:
            consumers = await redis.xinfo_consumers(GATEWAY_REQUESTS_STREAM, GROUP)
        except Exception:  # noqa: BLE001 - the stream or group does not exist yet
            consumers = []
        if names <= {c["name"].decode() for c in consumers}:
            return
        if time.monotonic() > deadline:
            raise BenchError("the usage workers did not join their consumer group")
        await asyncio.sleep(0.05)


async def _check_once(conn: asyncpg.Connection, entries: int) -> None:
    row = await conn.fetchrow(
        "SELECT (SELECT count(*) FROM usage_logs) AS raw, (SELECT sum(calls) FROM usage_hourly) AS hourly,"
        " (SELECT sum(calls) FROM usage_daily) AS daily, (SELECT count(*) FROM inbox) AS inbox"
    )
    found = dict(row) if row else {}
    expected = {"raw": RECORDS, "hourly": RECORDS, "daily": RECORDS, "inbox": entries}
    if found != expected:
        raise BenchError(f"usage ingestion lost or repeated records: expected {expected}, found {found}")


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


# --- audit queries --------------------------------------------------------------------------

ACTIONS = (
    "identity.api_key.created",
    "identity.api_key.revoked",
    "identity.session.created",
    "identity.session.revoked",
    "identity.user.invited",
    "identity.user.role_changed",
    "identity.password.changed",
    "billing.payment.succeeded",
    "billing.subscription.changed",
    "notifier.email.sent",
    "usage.api_keys.used",
)


def _audit(dsn: str, redis_url: str, key_dir: Any) -> list[Figure]:
    big = asyncio.run(_seed_audit(dsn))
    port = free_port()
    api = _spawn(dsn, redis_url, "serve", port=port, key_dir=key_dir)
    signer = AssertionSigner((key_dir / "assertion_private.pem").read_text())
    try:
        return asyncio.run(_query(dsn, port, big, api, signer))
    finally:
        _stop([api])


def _audit_rows(tenant: UUID, count: int, rng: random.Random, start: datetime) -> Iterator[tuple[Any, ...]]:
    users = [str(uuid7()) for _ in range(20)]
    step = AUDIT_DAYS * 86_400_000 / count
    for i in range(count):
        actor = rng.choice(users)
        kind = "stripe" if i % 17 == 0 else "user"
        yield (
            uuid7(),
            tenant,
            kind,
            None if kind == "stripe" else actor,
            ACTIONS[i % len(ACTIONS)],
            "user",
            actor,
            f"req-{i:010d}",
            "203.0.113.10",
            '{"name": "bench", "prefix": "0123456789ab"}',
            start + timedelta(milliseconds=i * step),
        )


async def _seed_audit(dsn: str) -> UUID:
    rng = random.Random(11)
    start = datetime.now(UTC) - timedelta(days=AUDIT_DAYS)
    big = uuid7()
    columns = [
        *("id", "tenant_id", "actor_kind", "actor_id", "action", "target_type", "target_id"),
        *("correlation_id", "source_ip", "data", "occurred_at"),
    ]
    conn = await asyncpg.connect(dsn, server_settings={"search_path": SCHEMA})
    try:
        small = (AUDIT_ROWS - BIG_TENANT_ROWS) // SMALL_TENANT_ROWS
        tenants = [(big, BIG_TENANT_ROWS)] + [(uuid7(), SMALL_TENANT_ROWS) for _ in range(small)]
        for tenant, count in tenants:
            rows = list(_audit_rows(tenant, count, rng, start))
            for i in range(0, len(rows), 100_000):
                await conn.copy_records_to_table("audit_logs", records=rows[i : i + 100_000], columns=columns)
        await conn.execute("VACUUM ANALYZE audit_logs")
        total = await conn.fetchval("SELECT count(*) FROM audit_logs")
        if total != AUDIT_ROWS:
            raise BenchError(f"seeded {total} audit rows, wanted {AUDIT_ROWS}")
    finally:
        await conn.close()
    return big


async def _query(
    dsn: str, port: int, tenant: UUID, api: subprocess.Popen[bytes], signer: AssertionSigner
) -> list[Figure]:
    conn = await asyncpg.connect(dsn, server_settings={"search_path": SCHEMA})
    try:
        middle = await conn.fetchrow(
            "SELECT occurred_at, id FROM audit_logs WHERE tenant_id = $1"
            " ORDER BY occurred_at DESC, id DESC OFFSET $2 LIMIT 1",
            tenant,
            BIG_TENANT_ROWS // 2,
        )
        actor = await conn.fetchval(
            "SELECT actor_id FROM audit_logs WHERE tenant_id = $1 AND actor_id IS NOT NULL LIMIT 1", tenant
        )
    finally:
        await conn.close()
    assert middle is not None
    day = datetime.now(UTC) - timedelta(days=AUDIT_DAYS // 2)
    shapes: dict[str, dict[str, str]] = {
        "latest": {},
        "deep_cursor": {"cursor": encode_cursor(middle["occurred_at"], middle["id"])},
        "actor": {"actor": actor},
        "action": {"action": "identity.user.invited"},
        "action_prefix": {"action": "billing.*"},
        "actor_kind": {"actor": "stripe"},
        "one_day": {"from": day.isoformat(), "to": (day + timedelta(days=1)).isoformat()},
    }
    figures: list[Figure] = []
    pooled: list[float] = []
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
        await _wait_http(client, api)
        for name, params in shapes.items():
            latencies = await _timed_queries(client, signer, tenant, {**params, "limit": str(PAGE)})
            pooled += latencies
            figures.append(single("usage", f"audit_{name}_p50_ms", percentile(latencies, 50), "ms"))
            figures.append(single("usage", f"audit_{name}_p99_ms", percentile(latencies, 99), "ms"))
    figures.append(single("usage", "audit_query_p50_ms", percentile(pooled, 50), "ms"))
    figures.append(single("usage", "audit_query_p99_ms", percentile(pooled, 99), "ms"))
    return figures


async def _timed_queries(
    client: httpx.AsyncClient, signer: AssertionSigner, tenant: UUID, params: dict[str, str]
) -> list[float]:
    latencies: list[float] = []
    for i in range(WARMUP + QUERIES):
        headers = {HEADER: _assertion(signer, tenant)}
        started = time.perf_counter()
        resp = await client.get("/audit-logs", params=params, headers=headers)
        elapsed = (time.perf_counter() - started) * 1000
        if resp.status_code != 200:
            raise BenchError(f"audit query {params} answered {resp.status_code}: {resp.text[:300]}")
        if not msgspec.json.decode(resp.content)["items"]:
            raise BenchError(f"audit query {params} found nothing: the figure would mean nothing")
        if i >= WARMUP:
            latencies.append(elapsed)
    return latencies


def _assertion(signer: AssertionSigner, tenant: UUID) -> str:
    caller = Caller(
        kind="user", aud="usage", exp=time.time() + 30, tenant_id=tenant, user_id=UUID(int=1), role="owner"
    )
    return signer.sign(caller)


async def _wait_http(client: httpx.AsyncClient, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while True:
        _check_alive([proc])
        try:
            if (await client.get("/health")).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise BenchError("the usage API did not start")
        await asyncio.sleep(0.1)


# --- processes and data ---------------------------------------------------------------------


def _spawn(
    dsn: str, redis_url: str, command: str, *, port: int = 0, key_dir: Any = None
) -> subprocess.Popen[bytes]:
    env = {**os.environ, "APP_ENV": "test", "LOG_LEVEL": "WARNING", "DATABASE_URL": dsn}
    env["REDIS_URL"] = redis_url
    args = [sys.executable, "-m", "shared.cli", command, "usage"]
    if command == "serve":
        env["ASSERTION_PUBLIC_KEY_FILE"] = str(key_dir / "assertion_public.pem")
        args += ["--port", str(port)]
    log = (ROOT / f"{command}.log").open("ab")
    return subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT)


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _check_alive(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        if proc.poll() is not None:
            raise BenchError(f"a usage process exited with {proc.returncode} (see {ROOT})")


async def _reset_schema(dsn: str, redis_url: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
    finally:
        await conn.close()
    await migrate(dsn, SCHEMA, MIGRATIONS)
    await _reset_data(dsn, redis_url)


async def _reset_data(dsn: str, redis_url: str) -> None:
    """Empty usage tables and streams, and a checkpoint, so every run starts alike."""
    conn = await asyncpg.connect(dsn, server_settings={"search_path": SCHEMA})
    try:
        await conn.execute(
            "TRUNCATE usage_logs, usage_hourly, usage_daily, usage_monthly, api_key_usage, inbox, outbox,"
            " quota_beats"
        )
        await conn.execute("CHECKPOINT")
    finally:
        await conn.close()
    redis = redis_client(redis_url)
    try:
        await redis.flushdb()
    finally:
        await redis.aclose()
