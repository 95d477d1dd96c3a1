"""Latency: one event per producer transaction at a steady rate; from its commit to its handler."""

from __future__ import annotations

import asyncio

from bench.bus import fixture
from bench.bus.fixture import Target
from bench.bus.roles import produce_paced
from bench.bus.stages import Metrics, Proc, check, consumers, cpu, names, rate, relayer, stage
from bench.common import percentile

WARMUP_S = 1.0  # the first second (connections, prepared statements) is not counted


def latency_run(target: Target, per_s: float, seconds: float, prefix: str, with_cpu: bool) -> Metrics:
    """`seconds` of events at `per_s`, the first WARMUP_S of them not counted."""
    total = round(per_s * seconds)
    asyncio.run(fixture.reset(target))
    group = consumers(total, report_latency=True)
    paced: Proc = ("producer", True, produce_paced, (per_s, seconds))
    got = stage(target, [*group, relayer(None), paced], ["producer", "relay", *names(group)])
    check(target, total)
    producer = got["producer"]
    handled = {k: v for name in names(group) for k, v in got[name]["handled_at"].items()}
    counted_from = producer["start"] + WARMUP_S
    latencies = [
        (handled[event_id] - committed) * 1000
        for event_id, committed in producer["committed"].items()
        if committed >= counted_from
    ]
    metrics: Metrics = {
        f"{prefix}_p50_ms": ("ms", percentile(latencies, 50)),
        f"{prefix}_p99_ms": ("ms", percentile(latencies, 99)),
        f"{prefix}_max_ms": ("ms", max(latencies)),
        f"{prefix}_rate_per_s": ("events/s", rate(total, producer["start"], producer["end"])),
    }
    if with_cpu:
        metrics |= cpu(prefix, got, group, total)
    return metrics
