"""Scenario `rss`: resident memory of every service API and worker, idle and after load (target: each
process <= 80 MB idle).

The whole platform runs (bench/platform.py), one process per API and per worker. Idle: IDLE_S
after every process answered, no traffic yet. Loaded: after LOAD_S of mixed traffic through
the gateway as fast as LOAD_CONNECTIONS allow (bench/traffic.py: JWT and API-key reads, logins,
Stripe webhooks), then SETTLE_S for the workers to drain. RSS is VmRSS from /proc. Gateway limits
are off so every request goes the whole way (the limiter's cost is the gateway scenario's).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from bench import platform, traffic
from bench.common import Figure, rss_mb, single
from bench.procs import BenchError
from shared.devstack import DevEnv
from shared.platform import SERVICES

PROCESSES = [f"{name}-api" for name in SERVICES] + [f"{n}-worker" for n, s in SERVICES.items() if s.schema]
METRICS = (
    "rss/idle_max_mb",
    "rss/loaded_max_mb",
    "rss/load_rps",
    "rss/load_errors",
    *(f"rss/idle_{p.replace('-', '_')}_mb" for p in PROCESSES),
    *(f"rss/loaded_{p.replace('-', '_')}_mb" for p in PROCESSES),
)
IDLE_S = 10.0
LOAD_S = 30.0
LOAD_CONNECTIONS = 16
SETTLE_S = 5.0
TENANTS = 4

SETTINGS: dict[str, Any] = {
    "idle_after_healthy_s": IDLE_S,
    "load_seconds": LOAD_S,
    "load_connections": LOAD_CONNECTIONS,
    "load": "wrk mix of GET /me and /usage/summary (JWT) and /me (API key), 1 login/s, 2 webhooks/s",
    "tenants": TENANTS,
    "gateway_rate_limits": False,
    "platform": "every API and worker, one process each (bench/platform.py), LOG_LEVEL=WARNING",
}


def run(env: DevEnv) -> list[Figure]:
    with platform.running(env, {"GATEWAY_RATE_LIMITS": "false"}) as p:
        time.sleep(IDLE_S)
        idle = _sample(p)
        callers = asyncio.run(traffic.register(p.url("gateway"), TENANTS))
        load = traffic.start_wrk(p.url("gateway"), callers, LOAD_CONNECTIONS, LOAD_S, rate=None)
        side = asyncio.run(traffic.side_traffic(p.url("gateway"), callers, LOAD_S, 1.0, 2.0))
        bulk = traffic.finish_wrk(load)
        time.sleep(SETTLE_S)
        loaded = _sample(p)
        p.supervisor.check_alive()
    if side.failures:
        raise BenchError(f"side traffic failed: {side.failures}")
    figures = [
        single("rss", "idle_max_mb", max(idle.values()), "MB"),
        single("rss", "loaded_max_mb", max(loaded.values()), "MB"),
        single("rss", "load_rps", bulk.rps, "req/s"),
        single("rss", "load_errors", bulk.errors + side.errors, "count"),
    ]
    figures += [single("rss", f"idle_{_key(n)}_mb", v, "MB") for n, v in idle.items()]
    figures += [single("rss", f"loaded_{_key(n)}_mb", v, "MB") for n, v in loaded.items()]
    return figures


def _sample(p: platform.Platform) -> dict[str, float]:
    return {name: rss_mb(pid) for name, pid in p.pids().items()}


def _key(name: str) -> str:
    return name.replace("-", "_")
