"""One measurement = one stage: fresh child processes, a common start, their results, a check."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from bench.bus import fixture
from bench.bus.consuming import consume
from bench.bus.fixture import Target
from bench.bus.roles import produce_bulk, relay
from bench.common import machine_cpu, server_cpu
from bench.procs import BenchError, Crew

READY_TIMEOUT = 60.0  # hang guards, not performance checks
RUN_TIMEOUT = 120.0

# (name, runs on uvloop, coroutine function, its arguments after link and target)
Proc = tuple[str, bool, Callable[..., Any], tuple[Any, ...]]
Metrics = dict[str, tuple[str, float]]  # metric -> (unit, value)


def stage(target: Target, procs: list[Proc], results: list[str]) -> dict[str, Any]:
    """Start the processes, let them all get ready, say go, collect the results of `results`.

    Also answers "finished" (when the consumers' shared tally reached its target) and
    "busy_cpu"/"busy_pct" (CPU-seconds the whole machine spent from go to the last result, and
    their share of all cores) and "servers_cpu" (what Postgres and Redis spent of it)."""
    with Crew() as crew:
        for name, use_uvloop, fn, args in procs:
            crew.start(name, use_uvloop, fn, target, *args)
        crew.wait("ready", names(procs), READY_TIMEOUT)
        before = _servers(target)
        busy_before, total_before = machine_cpu()
        crew.go.set()
        got = crew.wait("result", results, RUN_TIMEOUT)
        busy_after, total_after = machine_cpu()
        got["servers_cpu"] = {k: v - before[k] for k, v in _servers(target).items()}
        got["busy_cpu"] = busy_after - busy_before
        got["finished"] = crew.finished_at.value
        if got["finished"]:  # the busy share up to the last effect, not the wind-down after it
            busy_after, total_after = crew.finished_cpu[:]
        got["busy_pct"] = 100 * (busy_after - busy_before) / max(total_after - total_before, 1e-9)
        return got


def _servers(target: Target) -> dict[str, float]:
    pg, redis = urlsplit(target.dsn).port, urlsplit(target.redis_url).port
    return {"postgres": server_cpu(pg or 5432), "redis": server_cpu(redis or 6379)}


def producer(n: int) -> Proc:
    return ("producer", True, produce_bulk, (n,))  # uvloop: as uvicorn runs the API processes


def relayer(drain: int | None) -> Proc:
    return ("relay", False, relay, (drain,))  # asyncio.run: as `catalytic worker` runs


def consumers(n: int, report_latency: bool, write: bool = True) -> list[Proc]:
    args = (n, report_latency, write)
    return [(f"consumer-{i}", False, consume, args) for i in range(1, fixture.CONSUMERS + 1)]


def names(procs: list[Proc]) -> list[str]:
    return [p[0] for p in procs]


def rate(n: int, start: float, end: float) -> float:
    return n / (end - start)


def first_start(got: dict[str, Any], procs: list[Proc]) -> float:
    return float(min(got[name]["start"] for name in names(procs)))


def cpu(prefix: str, got: dict[str, Any], procs: list[Proc], n: int) -> Metrics:
    """Where the machine's CPU went: busy share of all cores, and CPU time per event by role."""
    used = {
        "producer": got["producer"]["cpu"],
        "relay": got["relay"]["cpu"],
        "consumers": sum(got[name]["cpu"] for name in names(procs) if name.startswith("consumer")),
    }
    used |= got["servers_cpu"]
    used["other"] = got["busy_cpu"] - sum(used.values())  # kernel threads, other tenants
    return {
        f"{prefix}_cpu_busy_pct": ("%", got["busy_pct"]),
        **{f"{prefix}_cpu_us_per_event_{role}": ("us", 1e6 * s / n) for role, s in used.items()},
    }


def check(target: Target, n: int, handled: int | None = None) -> None:
    """Every event published once and handled once per group; else the figures mean nothing."""
    found = asyncio.run(fixture.counts(target))
    expected = {"outbox": n, "unsent": 0, "inbox": handled or n, "effect": n}
    if found != expected:
        raise BenchError(f"bus run lost or repeated events: expected {expected}, found {found}")
