"""`catalytic serve <service> --workers N`: N server processes on one socket, all stopped with it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from bench.common import free_port, server_children
from shared.devstack import DevEnv
from shared.setup import local_keys_env
from tests.conftest import REPO, TEST_ROOT


def _serve(peers: DevEnv, port: int, *extra: str) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        **local_keys_env(TEST_ROOT / "keys", "test"),
        "REDIS_URL": peers.redis_url,
        "APP_ENV": "test",
        "LOG_LEVEL": "WARNING",
    }
    log = TEST_ROOT / "logs" / f"serve-workers-{port}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    args = [sys.executable, "-m", "shared.cli", "serve", "gateway", "--port", str(port), *extra]
    with log.open("ab") as out:
        return subprocess.Popen(
            args, env=env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


def _healthy(proc: subprocess.Popen[bytes], port: int) -> None:
    deadline = time.monotonic() + 60
    while True:
        assert proc.poll() is None, f"the server exited with {proc.returncode}"
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, "the server did not answer /health"
        time.sleep(0.1)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@pytest.mark.parametrize(("workers", "children"), [([], 0), (["--workers", "2"], 2)])
def test_serve_runs_the_asked_number_of_server_processes(
    peers: DevEnv, workers: list[str], children: int
) -> None:
    port = free_port()
    proc = _serve(peers, port, *workers)
    try:
        _healthy(proc, port)
        deadline = time.monotonic() + 30
        while len(found := server_children(proc.pid)) < children and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(found) == children
        answers = [httpx.get(f"http://127.0.0.1:{port}/health", timeout=5).status_code for _ in range(20)]
        assert answers == [200] * 20
    finally:
        _stop(proc)
    assert [pid for pid in found if Path(f"/proc/{pid}").exists()] == []
