"""`catalytic bench [scenario...]`: start throwaway peers, run scenarios, print and store their figures.

A scenario is a module listed in SCENARIOS with `run(env: DevEnv) -> list[Figure]` and, optionally,
`SETTINGS: dict` (the knobs it used, stored with the results). Adding one (gateway, health, login...)
means adding a module and a line here.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import Any, cast

from bench.common import REPO, Figure, write_results
from shared.devstack import DevEnv, DevStack, Ports

SCENARIOS: dict[str, str] = {
    "bus": "bench.bus",
    "identity": "bench.identity",
    "notifier": "bench.notifier",
    "gateway": "bench.gateway",
    "health": "bench.health",
    "usage": "bench.usage",
    "billing": "bench.billing",
}

# CATALYTIC_BENCH_SLOT=N moves the peers' ports and directory, so two benches can run at once.
SLOT = int(os.environ.get("CATALYTIC_BENCH_SLOT", "0"))
BENCH_ROOT = REPO / ".dev" / (f"bench{SLOT}" if SLOT else "bench")
# Distinct from dev (55432/56379) and tests (55433/56380); smtp/stripe are unused (peers=False).
PORTS = Ports(
    postgres=55434 + 10 * SLOT, redis=56381 + 10 * SLOT, smtp=1027 + 10 * SLOT, stripe=8422 + 10 * SLOT
)

Scenario = Callable[[DevEnv], list[Figure]]


def main(scenarios: list[str]) -> None:
    names = scenarios or list(SCENARIOS)
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        raise SystemExit(f"unknown scenario(s): {', '.join(unknown)}; known: {', '.join(SCENARIOS)}")
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(name)s: %(message)s")
    modules = {name: importlib.import_module(SCENARIOS[name]) for name in names}
    with _own_peers(), DevStack(BENCH_ROOT, PORTS, peers=False, fast=False) as env:
        for name, module in modules.items():
            run_scenario(name, module, env)


def run_scenario(name: str, module: ModuleType, env: DevEnv) -> list[Figure]:
    run = cast(Scenario, module.run)
    figures = run(env)
    for figure in figures:
        print(json.dumps(figure.as_dict()), flush=True)
    settings = cast(dict[str, Any], getattr(module, "SETTINGS", {}))
    path = write_results(name, figures, settings)
    print(f"bench: {len(figures)} figures written to {path.relative_to(REPO)}", file=sys.stderr)
    return figures


@contextmanager
def _own_peers() -> Iterator[None]:
    """DevStack reuses DATABASE_URL/REDIS_URL when they answer; a benchmark wants its own servers."""
    saved = {k: os.environ.pop(k) for k in ("DATABASE_URL", "REDIS_URL") if k in os.environ}
    try:
        yield
    finally:
        os.environ.update(saved)
