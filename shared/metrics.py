"""Prometheus metrics shared by every service (one registry per process)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

HTTP_REQUESTS = Counter("http_requests_total", "HTTP requests", ["service", "method", "status"])
HTTP_LATENCY = Histogram(
    "http_request_duration_seconds",
    "HTTP request latency",
    ["service"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
BUS_PUBLISHED = Counter("bus_events_published_total", "Events published from the outbox", ["stream"])
BUS_CONSUMED = Counter("bus_entries_acked_total", "Stream entries acknowledged", ["group", "stream"])
BUS_DEAD = Counter("bus_dead_letters_total", "Entries moved to a dead-letter stream", ["stream", "reason"])
