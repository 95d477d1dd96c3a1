#!/usr/bin/env python3
"""Container health probe (standard library only), used by compose.yaml.

catalytic-healthcheck http URL [--any-status]
    healthy when URL answers 200 (with --any-status: any HTTP answer at all)
catalytic-healthcheck worker
    healthy when PID 1 is a live `catalytic worker <service>` and the Redis and Postgres it
    uses (REDIS_URL, <SERVICE>_DATABASE_URL or DATABASE_URL, or their _FILE variants)
    accept connections
"""

from __future__ import annotations

import os
import socket
import sys
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

TIMEOUT = 3.0


def check_http(url: str, any_status: bool) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT) as resp:  # noqa: S310 - a URL we were given
            return None if resp.status == 200 or any_status else f"{url} answered {resp.status}"
    except urllib.error.HTTPError as exc:
        return None if any_status else f"{url} answered {exc.code}"
    except OSError as exc:
        return f"{url}: {exc}"


def _setting(name: str) -> str:
    if name in os.environ:
        return os.environ[name]
    path = os.environ.get(f"{name}_FILE")
    return Path(path).read_text().strip() if path else ""


def _reachable(url: str, default_port: int) -> str | None:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or default_port
    try:
        with socket.create_connection((host, port), timeout=TIMEOUT):
            return None
    except OSError as exc:
        return f"{host}:{port}: {exc}"


def check_worker() -> str | None:
    try:
        argv = Path("/proc/1/cmdline").read_bytes().split(b"\0")
        status = Path("/proc/1/status").read_text().splitlines()
        state = next(line for line in status if line.startswith("State:"))
    except (OSError, StopIteration) as exc:
        return f"cannot read PID 1: {exc}"
    args = [a.decode() for a in argv if a]
    if "worker" not in args or args.index("worker") + 1 >= len(args):
        return f"PID 1 is not a worker: {' '.join(args)}"
    if any(s in state for s in ("zombie", "stopped", "dead")):
        return f"PID 1 is {state.split(':', 1)[1].strip()}"
    service = args[args.index("worker") + 1]
    problems = [_reachable(_setting("REDIS_URL") or "redis://127.0.0.1:6379", 6379)]
    database = _setting(f"{service.upper()}_DATABASE_URL") or _setting("DATABASE_URL")
    if database:
        problems.append(_reachable(database, 5432))
    found = [p for p in problems if p]
    return "; ".join(found) if found else None


def main(argv: list[str]) -> int:
    if len(argv) >= 2 and argv[0] == "http":
        problem = check_http(argv[1], "--any-status" in argv[2:])
    elif argv == ["worker"]:
        problem = check_worker()
    else:
        print(__doc__, file=sys.stderr)
        return 2
    if problem:
        print(f"unhealthy: {problem}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
