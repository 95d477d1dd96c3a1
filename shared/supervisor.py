"""Runs the platform's processes (servers and workers) as children and stops them all."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO


@dataclass
class Child:
    name: str
    proc: subprocess.Popen[bytes]


@dataclass
class Supervisor:
    env: Mapping[str, str]
    log_dir: Path | None = None  # None: children inherit our stdout/stderr
    children: list[Child] = field(default_factory=list)

    def spawn(self, name: str, *args: str) -> Child:
        out: IO[bytes] | None = None
        if self.log_dir is not None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            out = (self.log_dir / f"{name}.log").open("ab")
        proc = subprocess.Popen(
            [sys.executable, "-m", "shared.cli", *args],
            env={**os.environ, **self.env},
            stdout=out,
            stderr=subprocess.STDOUT if out is not None else None,
            start_new_session=True,  # Ctrl-C reaches us once; we stop the children in order
        )
        child = Child(name, proc)
        self.children.append(child)
        return child

    def start_platform(self, services: list[str], workers: list[str]) -> None:
        for name in services:
            self.spawn(f"{name}-api", "serve", name)
        for name in workers:
            self.spawn(f"{name}-worker", "worker", name)

    def wait_healthy(self, urls: Mapping[str, str], timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        for name, url in urls.items():
            while True:
                self.check_alive()
                try:
                    with urllib.request.urlopen(url, timeout=1) as resp:  # noqa: S310 - local URL
                        if resp.status == 200:
                            break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{name} did not become healthy at {url}")
                time.sleep(0.1)

    def check_alive(self) -> None:
        for child in self.children:
            code = child.proc.poll()
            if code is not None:
                raise RuntimeError(f"{child.name} exited with code {code}")

    def stop(self, timeout: float = 10.0) -> None:
        for child in self.children:
            if child.proc.poll() is None:
                os.killpg(child.proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for child in self.children:
            try:
                child.proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(child.proc.pid, signal.SIGKILL)
                child.proc.wait()
        self.children.clear()
