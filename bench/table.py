"""`python -m bench.table`: the markdown table of docs/benchmarks.md, from bench/results/*.json.

One row per figure: the targets first (in the order of TARGETS), then every other figure by
scenario; a figure that misses its target is marked. Re-run after `make bench` and paste the
output between the markers in docs/benchmarks.md (or pass `--write` to do it).
"""

from __future__ import annotations

import json
import operator
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.common import REPO, RESULTS_DIR

DOC = REPO / "docs" / "benchmarks.md"
BEGIN, END = "<!-- bench-table:begin -->", "<!-- bench-table:end -->"

_OPS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "≤": operator.le,
    "≥": operator.ge,
    "=": operator.eq,
}

# The contract's figures, first in the table, with what each is and its target (if it has one).
TARGETS: dict[str, tuple[str, tuple[str, float] | None]] = {
    "health/p95_ms": ("gateway `/health`, 1,000 requests at concurrency 10", ("<", 5)),
    "gateway/overhead_p50_ms": ("gateway overhead, worst of JWT / API key / rate limited", ("≤", 1)),
    "gateway/overhead_p99_ms": ("same, p99", ("≤", 5)),
    "gateway/auth_rps": ("JWT through the gateway, whole machine, trivial upstream", ("≥", 3000)),
    "gateway/auth_errors": ("errors of that run", ("=", 0)),
    "gateway/auth_rps_ratio": ("that over a bare Litestar JSON endpoint, same server and workers", None),
    "identity/logins_per_s_c8": ("logins/s, 8 clients, production argon2id", None),
    "identity/login_p99_ms_c8": ("login p99, 8 clients", None),
    "bus/events_per_s": ("outbox → relay → stream → consumer, full path", ("≥", 20_000)),
    "bus/e2e_p99_ms": ("commit → handler at 1,000 events/s", ("≤", 10)),
    "webhook_to_email/p50_ms": ("signed Stripe webhook at the gateway → receipt accepted by SMTP", None),
    "webhook_to_email/p99_ms": ("same, p99, 5 webhooks/s", ("≤", 250)),
    "usage_ingest/rows_per_s": ("gateway usage records → rows and rollups, 2 workers", ("≥", 10_000)),
    "usage/audit_query_p99_ms": ("audit log query p99 at 1M rows, all shapes", None),
    "rss/idle_max_mb": ("largest idle RSS of the 9 API and worker processes", ("≤", 80)),
    "soak/errors": ("errors in the soak (`make soak`)", ("=", 0)),
    "soak/rss_growth_max_pct": ("largest RSS growth of a process during the soak", ("<", 10)),
}


def _load() -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted(RESULTS_DIR.glob("*.json"))]


def _num(value: float) -> str:
    if value == int(value) and abs(value) >= 100:
        return f"{int(value):,}"
    return f"{value:,.2f}".rstrip("0").rstrip(".") if abs(value) < 100 else f"{value:,.0f}"


def _measured(fig: dict[str, Any]) -> str:
    text = f"{_num(fig['value'])} {fig['unit']}"
    if fig.get("min") is not None and fig.get("max") is not None:
        text += f" ({_num(fig['min'])}–{_num(fig['max'])})"  # noqa: RUF001 - a range, typeset
    return text


def _machine(result: dict[str, Any]) -> str:
    m = result.get("machine", {})
    cpu = (m.get("cpu") or "?").replace("AMD ", "").split(" Processor")[0]
    return f"{m.get('nproc', '?')} vCPU {cpu}"


def rows() -> list[str]:
    figures: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
    for result in _load():
        for fig in result["figures"]:
            figures[f"{fig['scenario']}/{fig['metric']}"] = (fig, result)
        background = result.get("settings", {}).get("background_cpu_pct")
        if background is not None:
            name = f"{result['scenario']}/background_cpu_pct"
            fig = {
                "scenario": result["scenario"],
                "metric": "background_cpu_pct",
                "value": background,
                "unit": "%",
            }
            figures.setdefault(name, (fig, result))
    ordered = [n for n in TARGETS if n in figures] + sorted(n for n in figures if n not in TARGETS)
    out = [
        "| Figure | Target | Measured: median (min–max) | Date | Commit | Machine |",  # noqa: RUF001
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name in ordered:
        fig, result = figures[name]
        target = "—"
        measured = _measured(fig)
        label = f"`{name}`"
        if name in TARGETS:
            what, goal = TARGETS[name]
            label += f" — {what}"
            if goal is not None:
                op, bound = goal
                target = f"{op} {_num(bound)}"
                if not _OPS[op](fig["value"], bound):
                    measured = f"**{measured}** — missed"
        date = str(result.get("date", "?"))[:10]
        out.append(
            f"| {label} | {target} | {measured} | {date} | `{result.get('commit')}` | {_machine(result)} |"
        )
    return out


def write(doc: Path = DOC) -> None:
    text = doc.read_text()
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    doc.write_text(head + BEGIN + "\n" + "\n".join(rows()) + "\n" + END + tail)


def main(argv: list[str]) -> None:
    if "--write" in argv:
        write()
        print(f"table written to {DOC.relative_to(REPO)}", file=sys.stderr)
    else:
        print("\n".join(rows()))


if __name__ == "__main__":
    main(sys.argv[1:])
