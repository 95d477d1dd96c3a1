"""Scenario `soak` (not in the default list; `make soak`): RATE requests/s of mixed traffic through the
gateway for SOAK_SECONDS (default 600) -> errors (must be 0) and RSS growth of every process
(must stay under 10 %).

The whole platform runs (bench/platform.py), the gateway with one server process per core.
The mix (bench/traffic.py): wrk paced to RATE minus the side traffic, cycling GET /me and
/usage/summary with JWTs and GET /me with API keys of TENANTS tenants; beside it, logins with the
production argon2 parameters and signed Stripe webhooks. RSS is sampled every SAMPLE_S; growth
is measured from the sample taken after WARMUP_S of traffic (caches and pools filled) to the
largest later sample. Gateway limits are off: at this rate one tenant would be refused (429),
and the limiter's cost is the gateway scenario's.
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import time
from typing import Any

from bench import platform, traffic
from bench.common import Figure, rss_mb, single
from bench.procs import BenchError
from shared.devstack import DevEnv

SECONDS = float(os.environ.get("SOAK_SECONDS", "600"))
RATE = 1_000.0
LOGINS_PER_S = 1.0
WEBHOOKS_PER_S = 5.0
CONNECTIONS = 64
TENANTS = 8
WARMUP_S = min(60.0, SECONDS / 4)
SAMPLE_S = 5.0
GATEWAY_WORKERS = os.cpu_count() or 1
METRICS = (
    "soak/seconds",
    "soak/rps",
    "soak/requests",
    "soak/errors",
    "soak/p50_ms",
    "soak/p99_ms",
    "soak/rss_growth_max_pct",
)

SETTINGS: dict[str, Any] = {
    "seconds": SECONDS,
    "target_rate_per_s": RATE,
    "logins_per_s": LOGINS_PER_S,
    "webhooks_per_s": WEBHOOKS_PER_S,
    "wrk_connections": CONNECTIONS,
    "tenants": TENANTS,
    "rss_baseline_after_s": WARMUP_S,
    "gateway_processes": GATEWAY_WORKERS,
    "gateway_rate_limits": False,
    "platform": "every API and worker (bench/platform.py), LOG_LEVEL=WARNING, argon2 OWASP",
}


def run(env: DevEnv) -> list[Figure]:
    extra = {"GATEWAY_RATE_LIMITS": "false", "IDENTITY_ACCESS_TOKEN_TTL_SECONDS": str(int(SECONDS) + 900)}
    with platform.running(env, extra, gateway_workers=GATEWAY_WORKERS) as p:
        gateway = p.url("gateway")
        callers = asyncio.run(traffic.register(gateway, TENANTS))
        bulk_rate = RATE - LOGINS_PER_S - WEBHOOKS_PER_S
        load = traffic.start_wrk(gateway, callers, CONNECTIONS, SECONDS, rate=bulk_rate)
        samples: list[tuple[float, dict[str, float]]] = []
        stop = threading.Event()
        sampler = threading.Thread(target=_sample_until, args=(p, samples, stop), daemon=True)
        sampler.start()
        try:
            side = asyncio.run(traffic.side_traffic(gateway, callers, SECONDS, LOGINS_PER_S, WEBHOOKS_PER_S))
            bulk = traffic.finish_wrk(load)
        finally:
            stop.set()
            sampler.join()
            if load.poll() is None:
                load.kill()
        p.supervisor.check_alive()
    SETTINGS["wrk_errors_by_kind"] = bulk.error_kinds
    SETTINGS["side_traffic_failures"] = side.failures
    if side.failures:
        print(f"soak: side traffic failures: {side.failures}", file=sys.stderr)
    growth = _growth(samples)
    if not growth:
        raise BenchError("no RSS samples: the soak was too short")
    figures = [
        single("soak", "seconds", SECONDS, "s"),
        single("soak", "rps", bulk.rps + (side.sent / SECONDS), "req/s"),
        single("soak", "requests", bulk.requests + side.sent, "count"),
        single("soak", "errors", bulk.errors + side.errors, "count"),
        single("soak", "p50_ms", bulk.p50_ms, "ms"),
        single("soak", "p99_ms", bulk.p99_ms, "ms"),
        single("soak", "rss_growth_max_pct", max(growth.values()), "%"),
    ]
    figures += [
        single("soak", f"rss_growth_{name.replace('-', '_')}_pct", v, "%") for name, v in growth.items()
    ]
    last = samples[-1][1] if samples else {}
    figures += [single("soak", f"rss_end_{name.replace('-', '_')}_mb", v, "MB") for name, v in last.items()]
    return figures


def _sample_until(
    p: platform.Platform, samples: list[tuple[float, dict[str, float]]], stop: threading.Event
) -> None:
    start = time.monotonic()
    while not stop.wait(SAMPLE_S):
        try:
            samples.append((time.monotonic() - start, {n: rss_mb(pid) for n, pid in p.pids().items()}))
        except OSError:
            continue  # a process between two reads; the next sample counts


def _growth(samples: list[tuple[float, dict[str, float]]]) -> dict[str, float]:
    """Per process: % from the first sample after the warm-up to the largest later one."""
    after = [s for at, s in samples if at >= WARMUP_S]
    if len(after) < 2:
        return {}
    base = after[0]
    return {
        name: 100 * (max(s.get(name, 0.0) for s in after[1:]) - mb) / mb
        for name, mb in base.items()
        if mb > 0
    }
