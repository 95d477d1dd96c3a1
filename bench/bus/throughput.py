"""Throughput: N events through each stage alone, then through the full path at once."""

from __future__ import annotations

import asyncio

from bench.bus import fixture
from bench.bus.fixture import Target
from bench.bus.stages import (
    Metrics,
    check,
    consumers,
    cpu,
    first_start,
    names,
    producer,
    rate,
    relayer,
    stage,
)

EVENTS = 50_000


def throughput_round(target: Target, n: int = EVENTS) -> Metrics:
    """One repetition; every figure is events/s except the CPU breakdown of the full path."""
    # Each stage alone: producers fill the outbox, the relay drains it into the stream,
    # the consumers drain the stream, then drain it again for a group that writes nothing.
    asyncio.run(fixture.reset(target))
    alone = stage(target, [producer(n)], ["producer"])["producer"]
    published = stage(target, [relayer(n)], ["relay"])["relay"]
    group = consumers(n, report_latency=False)
    consumed = stage(target, group, names(group))
    check(target, n)
    bare_group = consumers(n, report_latency=False, write=False)
    bare = stage(target, bare_group, names(bare_group))
    check(target, n, handled=2 * n)
    # The full path, all at once: first insert to the n-th effect committed.
    asyncio.run(fixture.reset(target))
    full = stage(target, [*group, relayer(None), producer(n)], ["producer", "relay", *names(group)])
    check(target, n)
    start = full["producer"]["start"]
    return {
        "events_per_s": ("events/s", rate(n, start, full["finished"])),
        "full_path_produce_per_s": ("events/s", rate(n, start, full["producer"]["end"])),
        "produce_per_s": ("events/s", rate(n, alone["start"], alone["end"])),
        "publish_per_s": ("events/s", rate(n, published["start"], published["end"])),
        "consume_per_s": ("events/s", rate(n, first_start(consumed, group), consumed["finished"])),
        "consume_no_effect_per_s": ("events/s", rate(n, first_start(bare, bare_group), bare["finished"])),
        **cpu("full_path", full, group, n),
    }
