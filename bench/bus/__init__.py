"""Scenario `bus`: outbox -> relay -> Redis stream -> consumers (inbox + one effect row per event).

Throughput (throughput.py): EVENTS inserted by producers with add_events, through each stage
alone and through the full path, REPEATS times; figures are medians with min and max.
Latency (latency.py): one event per producer transaction at E2E_RATE (and at a light rate to
show the path's own latency), from the producer's commit to the consumer's handler.
Each producer, relay and consumer runs in a process of its own (roles.py, consuming.py).
"""

from __future__ import annotations

import sys
import time
from typing import Any

from bench.bus import fixture
from bench.bus.fixture import Target
from bench.bus.latency import WARMUP_S, latency_run
from bench.bus.throughput import EVENTS, throughput_round
from bench.common import Figure, machine_cpu, repeated, single
from shared.devstack import DevEnv

REPEATS = 3
E2E_RATE = 1_000.0  # events/s, one per producer transaction
E2E_SECONDS = 11.0
LIGHT_RATE = 100.0  # a rate this machine handles with CPU to spare: the path's own latency
LIGHT_SECONDS = 6.0
BACKGROUND_WARN_PCT = 10.0
_STAGES = ("produce", "full_path_produce", "publish", "consume", "consume_no_effect")
_CPU_ROLES = ("producer", "relay", "consumers", "postgres", "redis", "other")
METRICS = (
    "bus/background_cpu_pct",
    "bus/events_per_s",
    *(f"bus/{stage}_per_s" for stage in _STAGES),
    "bus/full_path_cpu_busy_pct",
    *(
        f"bus/{kind}_{m}"
        for kind in ("e2e", "e2e_light")
        for m in ("p50_ms", "p99_ms", "max_ms", "rate_per_s")
    ),
    "bus/e2e_cpu_busy_pct",
    *(f"bus/{run}_cpu_us_per_event_{role}" for run in ("full_path", "e2e") for role in _CPU_ROLES),
)

SETTINGS: dict[str, Any] = {
    "events": EVENTS,
    "repeats": REPEATS,
    "producer_tasks": fixture.PRODUCER_TASKS,
    "producer_tx_events": fixture.PRODUCER_TX,
    "relay_batch_size": fixture.RELAY_BATCH,
    "relay_poll_interval_s": fixture.RELAY_POLL_S,
    "consumer_processes": fixture.CONSUMERS,
    "consumer_batch_size": fixture.CONSUMER_BATCH,
    "consumer_block_ms": fixture.CONSUMER_BLOCK_MS,
    "e2e_rate_per_s": E2E_RATE,
    "e2e_seconds_measured": E2E_SECONDS - WARMUP_S,
    "e2e_light_rate_per_s": LIGHT_RATE,
    "e2e_light_seconds_measured": LIGHT_SECONDS - WARMUP_S,
    "postgres": "devstack, fast=False (fsync, synchronous_commit on)",
    "redis": "devstack, appendonly yes (appendfsync everysec)",
    "processes": "producer (uvloop, like the API), relay, each consumer (asyncio, like the worker)",
}


def run(env: DevEnv) -> list[Figure]:
    target = Target(env.database_url, env.redis_url)
    figures = [_background()]
    series: dict[str, tuple[str, list[float]]] = {}
    for _ in range(REPEATS):
        for metric, (unit, value) in throughput_round(target).items():
            series.setdefault(metric, (unit, []))[1].append(value)
    figures += [repeated("bus", metric, values, unit) for metric, (unit, values) in series.items()]
    for metrics in (
        latency_run(target, E2E_RATE, E2E_SECONDS, "e2e", with_cpu=True),
        latency_run(target, LIGHT_RATE, LIGHT_SECONDS, "e2e_light", with_cpu=False),
    ):
        figures += [single("bus", metric, value, unit) for metric, (unit, value) in metrics.items()]
    return figures


def _background(seconds: float = 2.0) -> Figure:
    """CPU the machine spends on others before we start: the figures assume it is near zero."""
    busy0, total0 = machine_cpu()
    time.sleep(seconds)
    busy1, total1 = machine_cpu()
    pct = 100 * (busy1 - busy0) / max(total1 - total0, 1e-9)
    if pct > BACKGROUND_WARN_PCT:
        print(f"bench: the machine is {pct:.0f}% busy before the run; figures will be low", file=sys.stderr)
    return single("bus", "background_cpu_pct", pct, "%")
