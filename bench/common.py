"""What every scenario shares: the Figure record, summary statistics and the results file."""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

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
            "cpu": _cpu_model(),
            "nproc": os.cpu_count(),
            "python": platform.python_version(),
            "implementation": sys.implementation.name,
            "platform": platform.platform(),
        },
    }


def _cpu_model() -> str | None:
    try:
        with open("/proc/cpuinfo") as info:
            models = [line.split(":", 1)[1].strip() for line in info if line.startswith("model name")]
    except OSError:
        return None
    return models[0] if models else None


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


def server_cpu(port: int) -> float:
    """CPU-seconds used so far by the devstack's server on `port` (postgres `-p PORT`, or
    redis-server) with its live and reaped children (postgres backends); 0.0 if not found."""
    stats = _proc_stats()
    root = next((pid for pid, (_, _, argv) in stats.items() if _listens(argv, port)), None)
    if root is None:
        return 0.0
    hz = os.sysconf("SC_CLK_TCK")
    own = stats[root][1]
    children = sum(times[0] for pid, (ppid, times, _) in stats.items() if ppid == root and pid != root)
    return (own[0] + own[1] + children) / hz


def _listens(argv: list[str], port: int) -> bool:
    if "redis-server" in argv[0] and argv[0].endswith(f":{port}"):
        return True  # redis-server retitles itself "redis-server HOST:PORT"
    return any(a in ("-p", "--port") and b == str(port) for a, b in itertools.pairwise(argv))


def _proc_stats() -> dict[int, tuple[int, tuple[int, int], list[str]]]:
    """pid -> (ppid, (utime+stime, cutime+cstime) in ticks, argv) of every readable process."""
    found: dict[int, tuple[int, tuple[int, int], list[str]]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            argv = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
        except (OSError, IndexError):
            continue
        own = int(fields[11]) + int(fields[12])
        reaped = int(fields[13]) + int(fields[14])
        found[int(entry.name)] = (int(fields[1]), (own, reaped), argv)
    return found


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def wait_ready(
    http: httpx.AsyncClient, proc: subprocess.Popen[bytes], name: str, log: Path, within: float = 60.0
) -> None:
    """Until `proc` answers 200 on /health; raise if it exits or hangs (a guard, not a measurement)."""
    from bench.procs import BenchError

    deadline = time.monotonic() + within
    while True:
        if proc.poll() is not None:
            raise BenchError(f"{name} exited with {proc.returncode}; see {log}")
        try:
            if (await http.get("/health")).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise BenchError(f"{name} did not become healthy")
        await asyncio.sleep(0.1)


def background_cpu_pct(seconds: float = 2.0) -> float:
    """Share of the machine busy with others before a run: the figures assume it is near zero."""
    busy0, total0 = machine_cpu()
    time.sleep(seconds)
    busy1, total1 = machine_cpu()
    return 100 * (busy1 - busy0) / max(total1 - total0, 1e-9)


def rss_mb(pid: int) -> float:
    """Resident set size of one process, in MiB (VmRSS from /proc, Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def server_children(parent: int) -> list[int]:
    """The server processes `serve --workers N` started under `parent` (uvicorn's supervisor),
    leaving out multiprocessing's resource tracker."""
    found = []
    for pid, (ppid, _, argv) in _proc_stats().items():
        if ppid == parent and not any("resource_tracker" in a for a in argv):
            found.append(pid)
    return sorted(found)
