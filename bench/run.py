"""`catalytic bench [scenario...]`: start throwaway peers, run scenarios, print and store their figures.

A scenario is a module listed in SCENARIOS with `run(env: DevEnv) -> list[Figure]`, `METRICS` (the
`scenario/metric` names it prints) and, optionally, `SETTINGS: dict` (the knobs it used, stored
with the results). Adding one means adding a module and a line here.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import Any, cast

from bench.common import REPO, Figure, background_cpu_pct, write_results
from shared.devstack import DevEnv, DevStack, Ports

SCENARIOS: dict[str, str] = {
    "health": "bench.health",
    "gateway": "bench.gateway",
    "identity": "bench.identity",
    "billing": "bench.billing",
    "notifier": "bench.notifier",
    "webhook_to_email": "bench.webhook_to_email",
    "rss": "bench.rss",
    "bus": "bench.bus",
    "usage": "bench.usage",
    "soak": "bench.soak",
}
# Run only when named: `make soak` (ten minutes by default).
NOT_BY_DEFAULT = frozenset({"soak"})
# The figures every full run must print (the contract the docs' table and the targets rely on);
# each scenario module declares what it prints in METRICS, checked by tests/unit/test_bench_registry.py.
REQUIRED = (
    "health/p95_ms",
    "gateway/overhead_p50_ms",
    "gateway/overhead_p99_ms",
    "gateway/auth_rps",
    "gateway/auth_rps_ratio",
    "identity/logins_per_s_c8",
    "identity/login_p99_ms_c8",
    "bus/events_per_s",
    "bus/e2e_p99_ms",
    "webhook_to_email/p50_ms",
    "webhook_to_email/p99_ms",
    "usage_ingest/rows_per_s",
    "usage/audit_query_p99_ms",
    "rss/idle_max_mb",
)

# CATALYTIC_BENCH_SLOT=N moves the peers' ports and directory, so two benches can run at once.
SLOT = int(os.environ.get("CATALYTIC_BENCH_SLOT", "0"))
BENCH_ROOT = REPO / ".dev" / (f"bench{SLOT}" if SLOT else "bench")
# Distinct from dev (55432/56379/1025/8420) and tests (55433/56380/1026/8421).
PORTS = Ports(
    postgres=55434 + 10 * SLOT, redis=56381 + 10 * SLOT, smtp=1027 + 10 * SLOT, stripe=8422 + 10 * SLOT
)

Scenario = Callable[[DevEnv], list[Figure]]
BACKGROUND_WARN_PCT = 10.0


def declared(module: ModuleType) -> tuple[str, ...]:
    """The `scenario/metric` names a scenario module says it prints."""
    return tuple(cast(tuple[str, ...], getattr(module, "METRICS", ())))


def main(scenarios: list[str]) -> None:
    names = scenarios or [n for n in SCENARIOS if n not in NOT_BY_DEFAULT]
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        raise SystemExit(f"unknown scenario(s): {', '.join(unknown)}; known: {', '.join(SCENARIOS)}")
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(name)s: %(message)s")
    # A SIGTERM (a killed `make bench`) unwinds like Ctrl-C: every peer and process is stopped.
    signal.signal(signal.SIGTERM, _terminate)
    modules = {name: importlib.import_module(SCENARIOS[name]) for name in names}
    with _own_peers(), DevStack(BENCH_ROOT, PORTS, peers=True, fast=False) as env:
        for name, module in modules.items():
            run_scenario(name, module, env)


def run_scenario(name: str, module: ModuleType, env: DevEnv) -> list[Figure]:
    run = cast(Scenario, module.run)
    background = background_cpu_pct()
    if background > BACKGROUND_WARN_PCT:
        print(
            f"bench: the machine is {background:.0f}% busy before {name}; figures will be low",
            file=sys.stderr,
        )
    figures = run(env)
    for figure in figures:
        print(json.dumps(figure.as_dict()), flush=True)
    missing = set(declared(module)) - {f.name for f in figures}
    if missing:
        print(f"bench: {name} did not measure {', '.join(sorted(missing))}", file=sys.stderr)
    settings = {
        **cast(dict[str, Any], getattr(module, "SETTINGS", {})),
        "background_cpu_pct": round(background, 1),
    }
    path = write_results(name, figures, settings)
    print(f"bench: {len(figures)} figures written to {path.relative_to(REPO)}", file=sys.stderr)
    return figures


def _terminate(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


@contextmanager
def _own_peers() -> Iterator[None]:
    """DevStack reuses DATABASE_URL/REDIS_URL when they answer; a benchmark wants its own servers."""
    saved = {k: os.environ.pop(k) for k in ("DATABASE_URL", "REDIS_URL") if k in os.environ}
    try:
        yield
    finally:
        os.environ.update(saved)
