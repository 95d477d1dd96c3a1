"""The benchmark output contract: every figure the docs and targets name is declared by a scenario.

No benchmark runs here; each scenario module lists the `scenario/metric` names it prints in
METRICS, and `catalytic bench` warns when a run does not print one of them.
"""

from __future__ import annotations

import importlib
import re

from bench import table
from bench.run import NOT_BY_DEFAULT, REQUIRED, SCENARIOS, declared

NAME = re.compile(r"^[a-z_]+/[a-z0-9_]+$")


def _all_declared() -> dict[str, str]:
    """Figure name -> the scenario module that declares it."""
    found: dict[str, str] = {}
    for scenario, module_name in SCENARIOS.items():
        names = declared(importlib.import_module(module_name))
        assert names, f"{module_name} declares no METRICS"
        for name in names:
            assert NAME.match(name), f"{module_name}: {name!r} is not scenario/metric"
            assert name not in found, f"{name} declared by {found.get(name)} and {scenario}"
            found[name] = scenario
    return found


def test_every_required_figure_is_declared_by_a_default_scenario() -> None:
    found = _all_declared()
    missing = [name for name in REQUIRED if name not in found]
    assert missing == []
    assert not {found[name] for name in REQUIRED} & NOT_BY_DEFAULT


def test_the_contract_names_are_all_there() -> None:
    contract = {
        "health/p95_ms",
        "gateway/overhead_p50_ms",
        "gateway/overhead_p99_ms",
        "gateway/auth_rps",
        "bus/events_per_s",
        "bus/e2e_p99_ms",
        "webhook_to_email/p50_ms",
        "webhook_to_email/p99_ms",
        "usage_ingest/rows_per_s",
        "rss/idle_max_mb",
    }
    assert contract <= set(REQUIRED)


def test_the_docs_table_only_names_declared_figures() -> None:
    found = _all_declared()
    assert [name for name in table.TARGETS if name not in found] == []


def test_soak_is_only_run_when_named() -> None:
    assert "soak" in SCENARIOS
    assert "soak" in NOT_BY_DEFAULT
