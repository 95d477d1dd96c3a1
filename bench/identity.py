"""Scenario `identity`: login latency and throughput with the production argon2id parameters
(m=19 MiB, t=2, p=1), and the cost of signing and verifying an access token.

The system under test runs as in production: `catalytic serve identity` (uvicorn, uvloop, one
process) against the bench's Postgres and Redis, APP_ENV=production so the OWASP profile is the
only one it accepts. This process is the load generator: it signs anonymous gateway assertions
(each login from its own address, so throttling never interferes) and posts `/auth/login` for
USERS registered beforehand, closed loop at CONCURRENCY clients for SECONDS after WARMUP_S.
Token costs are measured in-process with the key type `catalytic keys generate` makes (RSA 3072),
and one argon2id verification on one thread, for scale.
"""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import argon2
import httpx

from bench.common import REPO, Figure, free_port, percentile, single, wait_ready
from bench.procs import BenchError
from services.identity.service.passwords import PROFILES
from shared.auth.assertion import HEADER, AssertionSigner, Caller
from shared.auth.tokens import TokenSigner, TokenVerifier
from shared.devstack import DevEnv
from shared.http.app import redis_client
from shared.migrations import migrate
from shared.setup import local_keys_env

USERS = 20
CONCURRENCY = (1, 8)  # one client: the cost of a login; eight: the machine's login capacity
SECONDS = 10.0
WARMUP_S = 1.0
TOKEN_ROUNDS = 2_000
REDIS_DB = 6  # apart from the other scenarios
ROOT = REPO / ".dev" / "bench" / "identity"
PASSWORD = "Velvet-Orbit-Lantern-42"
READY_TIMEOUT = 60.0  # a hang guard, not a performance check
METRICS = (
    *(
        f"identity/{m}_c{c}"
        for c in CONCURRENCY
        for m in ("login_p50_ms", "login_p99_ms", "logins_per_s", "login_errors")
    ),
    "identity/token_sign_us",
    "identity/token_verify_us",
    "identity/argon2id_verify_ms",
)

SETTINGS: dict[str, Any] = {
    "argon2": "argon2id m=19456 KiB, t=2, p=1 (IDENTITY_PASSWORD_HASH_PROFILE=owasp, APP_ENV=production)",
    "hash_concurrency": "one thread per CPU (default), queue 64",
    "users": USERS,
    "concurrency": list(CONCURRENCY),
    "seconds_measured": SECONDS - WARMUP_S,
    "server": "one `catalytic serve identity` process (uvicorn, uvloop)",
    "path": "assertion check -> throttle check (Redis) -> user by email (Postgres) -> argon2id verify"
    " (thread pool) -> refresh token + outbox event in one transaction -> RS256 access token",
    "token_key": "RSA 3072 (catalytic keys generate), PyJWT",
    "postgres": "devstack, fast=False (fsync, synchronous_commit on)",
}


def run(env: DevEnv) -> list[Figure]:
    # argon2 is CPU-bound: figures taken on a busy machine are not comparable; say how busy it was.
    SETTINGS["load_average_1m_at_start"] = round(os.getloadavg()[0], 2)
    redis_url = env.redis_url.rsplit("/", 1)[0] + f"/{REDIS_DB}"
    keys = local_keys_env(ROOT / "keys", "bench")
    asyncio.run(_reset(env.database_url, redis_url))
    port = free_port()
    server = _start_server(env.database_url, redis_url, keys, port)
    try:
        signer = AssertionSigner(Path(keys["ASSERTION_PRIVATE_KEY_FILE"]).read_text())
        figures = asyncio.run(_measure(f"http://127.0.0.1:{port}", signer, server))
    finally:
        server.terminate()
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    return figures + _in_process_costs(keys)


async def _measure(base: str, signer: AssertionSigner, server: subprocess.Popen[bytes]) -> list[Figure]:
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        await wait_ready(http, server, "identity", ROOT / "identity-api.log", READY_TIMEOUT)
        emails = [f"bench-{i}-{os.urandom(4).hex()}@bench.test" for i in range(USERS)]
        for i, email in enumerate(emails):
            body = {"email": email, "password": PASSWORD, "company_name": f"Bench {i}"}
            resp = await http.post("/auth/register", json=body, headers=_anonymous(signer))
            if resp.status_code != 201:
                raise BenchError(f"register failed: {resp.status_code} {resp.text}")
        figures: list[Figure] = []
        for clients in CONCURRENCY:
            latencies, errors, elapsed = await _load(http, signer, emails, clients)
            figures += [
                single("identity", f"login_p50_ms_c{clients}", percentile(latencies, 50), "ms"),
                single("identity", f"login_p99_ms_c{clients}", percentile(latencies, 99), "ms"),
                single("identity", f"logins_per_s_c{clients}", len(latencies) / elapsed, "logins/s"),
                single("identity", f"login_errors_c{clients}", errors, "count"),
            ]
        return figures


async def _load(
    http: httpx.AsyncClient, signer: AssertionSigner, emails: list[str], clients: int
) -> tuple[list[float], int, float]:
    start = time.monotonic()
    counted_from, stop = start + WARMUP_S, start + SECONDS
    latencies: list[float] = []
    errors = 0

    async def client() -> None:
        nonlocal errors
        while time.monotonic() < stop:
            body = {"email": random.choice(emails), "password": PASSWORD}
            began = time.monotonic()
            resp = await http.post("/auth/login", json=body, headers=_anonymous(signer))
            ended = time.monotonic()
            if resp.status_code != 200:
                errors += 1
            elif began >= counted_from:
                latencies.append((ended - began) * 1000)

    await asyncio.gather(*(client() for _ in range(clients)))
    return latencies, errors, time.monotonic() - counted_from


def _in_process_costs(keys: dict[str, str]) -> list[Figure]:
    signer = TokenSigner(
        Path(keys["JWT_PRIVATE_KEY_FILE"]).read_text(), issuer="catalytic-identity", audience="catalytic-api"
    )
    verifier = TokenVerifier(signer.jwks(), issuer="catalytic-identity", audience="catalytic-api")
    args = {"user_id": "u", "tenant_id": "t", "role": "owner", "plan": "free"}
    started = time.perf_counter()
    tokens = [signer.issue(**args)[0] for _ in range(TOKEN_ROUNDS)]
    sign_us = (time.perf_counter() - started) / TOKEN_ROUNDS * 1e6
    started = time.perf_counter()
    for token in tokens:
        verifier.verify(token)
    verify_us = (time.perf_counter() - started) / TOKEN_ROUNDS * 1e6
    hasher = argon2.PasswordHasher.from_parameters(PROFILES["owasp"])
    stored = hasher.hash(PASSWORD)
    started = time.perf_counter()
    for _ in range(20):
        hasher.verify(stored, PASSWORD)
    argon2_ms = (time.perf_counter() - started) / 20 * 1000
    return [
        single("identity", "token_sign_us", sign_us, "µs"),
        single("identity", "token_verify_us", verify_us, "µs"),
        single("identity", "argon2id_verify_ms", argon2_ms, "ms"),
    ]


def _anonymous(signer: AssertionSigner) -> dict[str, str]:
    # A fresh address per login: the bench measures logins, not the throttle.
    ip = ".".join(str(random.randint(1, 254)) for _ in range(4))
    caller = Caller(kind="anonymous", aud="identity", exp=time.time() + 30, ip=ip)
    return {HEADER: signer.sign(caller)}


async def _reset(database_url: str, redis_url: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute("DROP SCHEMA IF EXISTS identity CASCADE")
    finally:
        await conn.close()
    await migrate(database_url, "identity", REPO / "services" / "identity" / "migrations")
    redis = redis_client(redis_url)
    try:
        await redis.flushdb()
    finally:
        await redis.aclose()


def _start_server(
    database_url: str, redis_url: str, keys: dict[str, str], port: int
) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        **keys,
        "APP_ENV": "production",
        "IDENTITY_PASSWORD_HASH_PROFILE": "owasp",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "LOG_LEVEL": "WARNING",
    }
    ROOT.mkdir(parents=True, exist_ok=True)
    log = (ROOT / "identity-api.log").open("ab")
    return subprocess.Popen(
        [sys.executable, "-m", "shared.cli", "serve", "identity", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
