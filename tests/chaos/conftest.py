"""The chaos suite: the platform's processes and peers are killed and restarted under load.

It restarts Redis and Postgres, so it runs in its own pytest session (see the Makefile). Sizes are
small in `make test` and full in `make test-long` (CATALYTIC_LONG=1)."""

from __future__ import annotations

import os
import signal
import subprocess
import time

from shared.supervisor import Child
from tests.platform import Platform

LONG = os.environ.get("CATALYTIC_LONG") == "1"
WORKERS = ("identity-worker", "billing-worker", "notifier-worker", "usage-worker")


def child(platform: Platform, name: str) -> Child:
    [found] = [c for c in platform.supervisor.children if c.name == name]
    return found


def kill_and_restart(platform: Platform, name: str) -> None:
    """SIGKILL one process of the platform (no chance to clean up) and start it again."""
    old = child(platform, name)
    os.killpg(old.proc.pid, signal.SIGKILL)
    try:
        old.proc.wait(10)
    except subprocess.TimeoutExpired:  # pragma: no cover - SIGKILL is not ignorable
        raise AssertionError(f"{name} survived SIGKILL") from None
    platform.supervisor.children.remove(old)
    service, kind = name.rsplit("-", 1)
    platform.supervisor.spawn(name, "serve" if kind == "api" else "worker", service)


def wait_until(check: object, what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.25)
