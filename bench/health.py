"""Scenario `health`: the gateway's `/health`, 1,000 requests at concurrency 10 (target: P95 < 5 ms).

A liveness probe must answer fast even while the gateway carries traffic; here it is measured on
an otherwise idle gateway with wrk (10 connections, 1 thread, stopped after REQUESTS answers),
REPEATS runs, median with min/max.
"""

from __future__ import annotations

import json
from typing import Any

from bench.common import Figure, free_port, repeated
from bench.gateway import GATEWAY_WORKERS, base_env, ensure_wrk, serve_gateway, serve_upstream, wrk
from shared.devstack import DevEnv

REPEATS = 5
REQUESTS = 1_000
# wrk stops sending after REQUESTS answers but waits out its duration: keep it short, and check
# from `health/requests` that every run got its REQUESTS answers.
SECONDS = 5
CONNECTIONS = 10
METRICS = tuple(f"health/{m}" for m in ("p50_ms", "p95_ms", "p99_ms", "errors", "requests"))

SETTINGS: dict[str, Any] = {
    "repeats": REPEATS,
    "requests_per_run": REQUESTS,
    "connections": CONNECTIONS,
    "load_generator": "wrk 4.1 (1 thread)",
    "gateway": f"`catalytic serve gateway --workers {GATEWAY_WORKERS}`, as in the gateway scenario;"
    " LOG_LEVEL=WARNING",
}


def run(env: DevEnv) -> list[Figure]:
    ensure_wrk()
    common = base_env(env)
    up_port, gw_port = free_port(), free_port()
    upstream_url = f"http://127.0.0.1:{up_port}"
    gateway_env = {
        **common,
        "GATEWAY_IDENTITY_URL": upstream_url,
        "GATEWAY_UPSTREAMS": json.dumps([{"name": "bench", "prefix": "/bench", "url": upstream_url}]),
    }
    series: dict[str, list[float]] = {}
    with serve_upstream(common, up_port), serve_gateway(gateway_env, gw_port, "gateway-health"):
        url = f"http://127.0.0.1:{gw_port}/health"
        wrk(url, "x-bench", ["1"], CONNECTIONS, 1)  # warm up
        for _ in range(REPEATS):
            got = wrk(url, "x-bench", ["1"], CONNECTIONS, SECONDS, max_requests=REQUESTS)
            for metric, value in (
                ("p50_ms", got.p50_ms),
                ("p95_ms", got.p95_ms),
                ("p99_ms", got.p99_ms),
                ("errors", float(got.errors)),
                ("requests", float(got.requests)),
            ):
                series.setdefault(metric, []).append(value)
    units = {"errors": "count", "requests": "count"}
    return [repeated("health", m, v, units.get(m, "ms")) for m, v in series.items()]
