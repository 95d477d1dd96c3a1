"""Scenario `billing`: Stripe webhook ingress — verify the signature, store the event once, answer.

The system under test runs as in production: one `catalytic serve billing` process (uvicorn,
uvloop; APP_ENV=production, two webhook secrets as during a rotation, the event signed with the
second so both are tried) against the bench's Postgres and Redis. This process is the load
generator: every request is a distinct, realistic event (`customer.subscription.updated`, about
3 KB) signed with Stripe's scheme beforehand, with the anonymous caller assertion the gateway
adds. Latency: an open loop at RATE webhooks/s (what Stripe sends a busy account is far less);
throughput: a closed loop of CONCURRENCY clients. The worker is not running: this measures what
Stripe waits for, not the processing behind it. Every run checks that each event was stored once.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from bench.common import REPO, Figure, free_port, percentile, repeated, wait_ready
from bench.procs import BenchError
from shared.auth.assertion import HEADER, AssertionSigner, Caller
from shared.devstack import DevEnv
from shared.migrations import migrate
from shared.setup import local_keys_env

RATE = 100.0  # webhooks/s of the latency run (a busy Stripe account sends a few a second)
LATENCY_SECONDS = 10.0
CONCURRENCY = 16
THROUGHPUT_SECONDS = 10.0
WARMUP_S = 1.0
REPEATS = 3
REDIS_DB = 7  # apart from the other scenarios
ROOT = REPO / ".dev" / "bench" / "billing"
SECRETS = ("whsec_bench_previous", "whsec_bench_current")
READY_TIMEOUT = 60.0  # a hang guard, not a performance check
METRICS = tuple(
    f"billing/{m}"
    for m in (
        "webhook_p50_ms",
        "webhook_p99_ms",
        "webhook_max_ms",
        "webhooks_per_s",
        "webhook_p99_ms_saturated",
    )
)

SETTINGS: dict[str, Any] = {
    "server": "one `catalytic serve billing` process (uvicorn, uvloop), APP_ENV=production",
    "path": "assertion check -> Stripe-Signature HMAC-SHA256 with the SDK's verifier (2 secrets, the"
    " second matches) -> JSON parse -> INSERT stripe_events ON CONFLICT DO NOTHING + NOTIFY -> 200",
    "event": "customer.subscription.updated, ~3 KB, a distinct id per request",
    "latency_rate_per_s": RATE,
    "latency_seconds_measured": LATENCY_SECONDS - WARMUP_S,
    "throughput_clients": CONCURRENCY,
    "throughput_seconds_measured": THROUGHPUT_SECONDS - WARMUP_S,
    "repeats": REPEATS,
    "client": "this process: raw keep-alive HTTP/1.1 connections (asyncio streams; httpx cost more CPU"
    " per request than the server), bodies signed before the run",
    "postgres": "devstack, fast=False (fsync, synchronous_commit on)",
}


def run(env: DevEnv) -> list[Figure]:
    SETTINGS["load_average_at_start"] = [round(x, 2) for x in os.getloadavg()]  # a shared machine?
    redis_url = env.redis_url.rsplit("/", 1)[0] + f"/{REDIS_DB}"
    keys = local_keys_env(ROOT / "keys", "bench")
    port = free_port()
    series: dict[str, tuple[str, list[float]]] = {}
    for _ in range(REPEATS):
        asyncio.run(_reset(env.database_url))
        server = _start_server(env.database_url, redis_url, keys, port)
        try:
            signer = AssertionSigner(Path(keys["ASSERTION_PRIVATE_KEY_FILE"]).read_text())
            got = asyncio.run(_measure(port, signer, server, env.database_url))
        finally:
            _stop(server)
        for metric, (unit, value) in got.items():
            series.setdefault(metric, (unit, []))[1].append(value)
    return [repeated("billing", metric, values, unit) for metric, (unit, values) in series.items()]


# --- load ------------------------------------------------------------------------------------


def _event(created: int) -> bytes:
    """A subscription update as Stripe sends it (the fields a real one carries, trimmed a little)."""
    sub_id = f"sub_{uuid.uuid4().hex[:24]}"
    item = {
        "id": f"si_{uuid.uuid4().hex[:14]}",
        "object": "subscription_item",
        "created": created - 86_400,
        "current_period_start": created - 86_400,
        "current_period_end": created + 29 * 86_400,
        "metadata": {},
        "price": {
            "id": "price_1QbenchStarterMonthly",
            "object": "price",
            "active": True,
            "billing_scheme": "per_unit",
            "currency": "usd",
            "lookup_key": "catalytic_starter_monthly",
            "product": "prod_QbenchStarter",
            "recurring": {"interval": "month", "interval_count": 1, "usage_type": "licensed"},
            "type": "recurring",
            "unit_amount": 2900,
            "unit_amount_decimal": "2900",
        },
        "quantity": 1,
        "subscription": sub_id,
        "tax_rates": [],
    }
    subscription: dict[str, Any] = {
        "id": sub_id,
        "object": "subscription",
        "application": None,
        "automatic_tax": {"enabled": False, "liability": None},
        "billing_cycle_anchor": created - 86_400,
        "cancel_at": None,
        "cancel_at_period_end": True,
        "canceled_at": created,
        "cancellation_details": {"comment": None, "feedback": None, "reason": "cancellation_requested"},
        "collection_method": "charge_automatically",
        "created": created - 86_400,
        "currency": "usd",
        "customer": f"cus_{uuid.uuid4().hex[:14]}",
        "default_payment_method": f"pm_{uuid.uuid4().hex[:24]}",
        "description": None,
        "discounts": [],
        "ended_at": None,
        "invoice_settings": {"account_tax_ids": None, "issuer": {"type": "self"}},
        "items": {"object": "list", "data": [item], "has_more": False, "total_count": 1},
        "latest_invoice": f"in_{uuid.uuid4().hex[:24]}",
        "livemode": False,
        "metadata": {"tenant_id": str(uuid.uuid4()), "plan": "starter"},
        "payment_settings": {"payment_method_options": None, "save_default_payment_method": "off"},
        "start_date": created - 86_400,
        "status": "active",
        "trial_end": None,
        "trial_start": None,
    }
    event = {
        "id": f"evt_{uuid.uuid4().hex[:24]}",
        "object": "event",
        "api_version": "2026-10-28.endive",
        "created": created,
        "data": {"object": subscription, "previous_attributes": {"cancel_at_period_end": False}},
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": f"req_{uuid.uuid4().hex[:14]}", "idempotency_key": str(uuid.uuid4())},
        "type": "customer.subscription.updated",
    }
    return json.dumps(event, indent=2).encode()


def _signed(count: int) -> list[tuple[bytes, str]]:
    now = int(time.time())
    out = []
    for _ in range(count):
        body = _event(now)
        mac = hmac.new(SECRETS[1].encode(), f"{now}.".encode() + body, hashlib.sha256).hexdigest()
        out.append((body, f"t={now},v1={mac}"))
    return out


class _Assertions:
    """The gateway's anonymous assertion, re-signed before it nears its 30 s expiry."""

    def __init__(self, signer: AssertionSigner) -> None:
        self.signer = signer
        self.until = 0.0
        self.value = ""

    def header(self) -> str:
        now = time.time()
        if now > self.until:
            caller = Caller(kind="anonymous", aud="billing", exp=now + 30, ip="3.18.12.63")  # Stripe's
            self.value = self.signer.sign(caller)
            self.until = now + 20
        return self.value


class _Closed(Exception):
    pass


class _Connection:
    """One keep-alive HTTP/1.1 connection: the load generator must cost far less than the server
    (httpx spends more CPU per request than the endpoint measured, on a machine they share)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, auth: _Assertions, body: bytes, signature: str) -> float:
        try:
            return await self._post(auth, body, signature)
        except (ConnectionError, asyncio.IncompleteReadError, _Closed):
            # The server closed the connection while it was idle (keep-alive timeout): the
            # request never reached it, so it is sent again on a fresh connection.
            self.close()
            self.reader = self.writer = None
            return await self._post(auth, body, signature)

    async def _post(self, auth: _Assertions, body: bytes, signature: str) -> float:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        assert self.reader is not None
        head = (
            "POST /webhooks/stripe HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nStripe-Signature: {signature}\r\n"
            f"{HEADER}: {auth.header()}\r\n\r\n"
        )
        began = time.perf_counter()
        self.writer.write(head.encode() + body)
        status = await self.reader.readline()
        if not status:
            raise _Closed()
        length = 0
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            if name.lower() == b"content-length":
                length = int(value)
        reply = await self.reader.readexactly(length)
        elapsed = (time.perf_counter() - began) * 1000
        if b" 200 " not in status:
            raise BenchError(f"webhook refused: {status!r} {reply[:300]!r}")
        return elapsed

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


class _Connections:
    """A pool of connections, one per request in flight."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.idle: list[_Connection] = []

    async def post(self, auth: _Assertions, body: bytes, signature: str) -> float:
        conn = self.idle.pop() if self.idle else _Connection(self.port)
        try:
            return await conn.post(auth, body, signature)
        finally:
            self.idle.append(conn)

    def close(self) -> None:
        for conn in self.idle:
            conn.close()


async def _latency(http: _Connections, auth: _Assertions) -> list[float]:
    total = round(RATE * LATENCY_SECONDS)
    bodies = _signed(total)
    start = time.monotonic()
    counted_from = start + WARMUP_S
    results: list[tuple[float, float]] = []

    async def one(i: int) -> None:
        await asyncio.sleep(max(0.0, start + i / RATE - time.monotonic()))
        sent = time.monotonic()
        results.append((sent, await http.post(auth, *bodies[i])))

    await asyncio.gather(*(one(i) for i in range(total)))
    return [ms for sent, ms in results if sent >= counted_from]


async def _throughput(http: _Connections, auth: _Assertions) -> tuple[int, float, list[float]]:
    bodies = _signed(round(THROUGHPUT_SECONDS * 3_000))  # more than the server can take
    start = time.monotonic()
    counted_from, stop = start + WARMUP_S, start + THROUGHPUT_SECONDS
    next_body = 0
    counted = 0
    latencies: list[float] = []

    async def client() -> None:
        nonlocal next_body, counted
        while time.monotonic() < stop and next_body < len(bodies):
            i, next_body = next_body, next_body + 1
            sent = time.monotonic()
            ms = await http.post(auth, *bodies[i])
            if sent >= counted_from:
                counted += 1
                latencies.append(ms)

    await asyncio.gather(*(client() for _ in range(CONCURRENCY)))
    return counted, time.monotonic() - counted_from, latencies


async def _measure(
    port: int, signer: AssertionSigner, server: subprocess.Popen[bytes], dsn: str
) -> dict[str, tuple[str, float]]:
    auth = _Assertions(signer)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as probe:
        await wait_ready(probe, server, "billing", ROOT / "billing-api.log", READY_TIMEOUT)
    http = _Connections(port)
    try:
        for body, signature in _signed(CONCURRENCY):  # connections, prepared statements
            await http.post(auth, body, signature)
        latencies = await _latency(http, auth)
        count, seconds, loaded = await _throughput(http, auth)
    finally:
        http.close()
    stored = await _stored(dsn)
    sent = CONCURRENCY + round(RATE * LATENCY_SECONDS)
    if stored < sent + count:
        raise BenchError(f"billing stored {stored} events, fewer than the {sent + count} it acknowledged")
    return {
        "webhook_p50_ms": ("ms", percentile(latencies, 50)),
        "webhook_p99_ms": ("ms", percentile(latencies, 99)),
        "webhook_max_ms": ("ms", max(latencies)),
        "webhooks_per_s": ("webhooks/s", count / seconds),
        "webhook_p99_ms_saturated": ("ms", percentile(loaded, 99)),
    }


# --- the server ------------------------------------------------------------------------------


async def _reset(database_url: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute("DROP SCHEMA IF EXISTS billing CASCADE")
    finally:
        await conn.close()
    await migrate(database_url, "billing", REPO / "services" / "billing" / "migrations")
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute("CHECKPOINT")
    finally:
        await conn.close()


async def _stored(database_url: str) -> int:
    conn = await asyncpg.connect(database_url)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM billing.stripe_events"))
    finally:
        await conn.close()


def _start_server(
    database_url: str, redis_url: str, keys: dict[str, str], port: int
) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        **keys,
        "APP_ENV": "production",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "LOG_LEVEL": "WARNING",
        "STRIPE_API_KEY": "sk_test_bench_unused",
        "STRIPE_API_BASE": "http://127.0.0.1:9",  # ingress never calls Stripe
        "BILLING_STRIPE_WEBHOOK_SECRETS": ",".join(SECRETS),
        "BILLING_STRIPE_PRICE_STARTER": "price_bench_s",
        "BILLING_STRIPE_PRICE_PROFESSIONAL": "price_bench_p",
        "BILLING_STRIPE_PRICE_ENTERPRISE": "price_bench_e",
    }
    ROOT.mkdir(parents=True, exist_ok=True)
    log = (ROOT / "billing-api.log").open("ab")
    return subprocess.Popen(
        [sys.executable, "-m", "shared.cli", "serve", "billing", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _stop(server: subprocess.Popen[bytes]) -> None:
    server.terminate()
    try:
        server.wait(20)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()
