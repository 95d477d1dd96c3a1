"""What every scenario shares: the Figure record, summary statistics and the results file."""

from __future__ import annotations

import json
import math
import os
import platform
import statistics
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
RESULTS_DIR = Path(__file__).resolve().parent / "results"


@dataclass(frozen=True)
class Figure:
    """One measured number; `min`/`max` are set when `value` is the median of repeated runs."""

    scenario: str
    metric: str
    value: float
    unit: str
    min: float | None = None
    max: float | None = None

    @property
    def name(self) -> str:
        return f"{self.scenario}/{self.metric}"

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "scenario": self.scenario,
            "metric": self.metric,
            "value": self.value,
            "unit": self.unit,
        }
        if self.min is not None:
            out["min"] = self.min
        if self.max is not None:
            out["max"] = self.max
        return out


def _round(value: float, unit: str) -> float:
    return float(round(value)) if unit.endswith("/s") else round(value, 2)


def single(scenario: str, metric: str, value: float, unit: str) -> Figure:
    return Figure(scenario, metric, _round(value, unit), unit)


def repeated(scenario: str, metric: str, values: list[float], unit: str) -> Figure:
    """Median of the runs, with the spread."""
    return Figure(
        scenario,
        metric,
        _round(statistics.median(values), unit),
        unit,
        min=_round(min(values), unit),
        max=_round(max(values), unit),
    )


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def git_commit() -> str | None:
    try:
        done = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=False,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() or None if done.returncode == 0 else None


def metadata() -> dict[str, Any]:
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": git_commit(),
        "machine": {
            "nproc": os.cpu_count(),
            "python": platform.python_version(),
            "implementation": sys.implementation.name,
            "platform": platform.platform(),
        },
    }


def write_results(scenario: str, figures: list[Figure], notes: dict[str, Any]) -> Path:
    """bench/results/<scenario>.json, written atomically; meant to be committed."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{scenario}.json"
    tmp = path.with_name(path.name + ".tmp")
    body = {"scenario": scenario, **metadata(), "settings": notes, "figures": [f.as_dict() for f in figures]}
    tmp.write_text(json.dumps(body, indent=2) + "\n")
    tmp.replace(path)
    return path


def machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU-seconds of the whole machine since boot, from /proc/stat (Linux)."""
    try:
        with open("/proc/stat") as stat:
            fields = [int(x) for x in stat.readline().split()[1:9]]
    except OSError:
        return 0.0, 0.0
    hz = os.sysconf("SC_CLK_TCK")
    idle = fields[3] + fields[4] + fields[7]  # idle, iowait, steal: not ours to use
    return (sum(fields) - idle) / hz, sum(fields) / hz
