"""The one chart of docs/benchmarks.md: latency percentiles direct vs through the gateway."""

from __future__ import annotations

from pathlib import Path

from bench.common import REPO, Figure

CHART = REPO / "docs" / "img" / "gateway-latency.png"
PERCENTILES = (("p50", "p50"), ("p90", "p90"), ("p99", "p99"), ("p999", "p99.9"))
SERIES = (("direct", "direct (no gateway)"), ("jwt", "gateway, JWT"), ("api_key", "gateway, API key"))


def gateway_latency(figures: list[Figure], path: Path = CHART) -> Path:
    """Grouped bars of the sequential (one connection) percentiles, medians of the rounds."""
    import matplotlib

    matplotlib.use("Agg")  # no display on a server
    import matplotlib.pyplot as plt

    by_name = {f.metric: f.value for f in figures if f.scenario == "gateway"}
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=100)
    width = 0.8 / len(SERIES)
    for i, (key, label) in enumerate(SERIES):
        values = [by_name.get(f"{key}_seq_{p}_ms", 0.0) for p, _ in PERCENTILES]
        xs = [x + (i - (len(SERIES) - 1) / 2) * width for x in range(len(PERCENTILES))]
        bars = ax.bar(xs, values, width, label=label)
        ax.bar_label(bars, fmt="%.2f", fontsize=7, padding=2)
    ax.set_xticks(range(len(PERCENTILES)), [label for _, label in PERCENTILES])
    ax.set_yscale("log")
    ax.set_ylabel("latency, ms (log scale)")
    ax.set_title("One request at a time to a trivial upstream: direct vs through the gateway")
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
