"""Benchmarks: `catalytic bench [scenario...]` starts throwaway peers and prints one JSON line per figure."""

from __future__ import annotations
