"""Real gateway processes in front of real HTTP peers, on the platform's Redis.

`gw`: two gateways whose every route leads to the peer (tests/gateway/peer.py): the echo product
upstream, and a stand-in for the platform services on their prefixes that also answers identity's
contract (JWKS, POST /internal/api-keys/verify) from keys the tests put in Redis. Tests that use
that STUB say so: they need control the real identity does not give (counting its calls,
publishing a rotated key, holding an expired key).
`real`: two gateways in front of the platform's real services (test_identity.py).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import redis

from tests.conftest import REPO, TEST_ROOT
from tests.platform import Platform

LOGS = TEST_ROOT / "logs" / "gateway-tests"
SLOW_TIMEOUT_S = 1.0
MAX_BODY = 1024 * 1024
ANONYMOUS_PER_MINUTE = 20


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    url: str

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()


def spawn(name: str, args: list[str], env: dict[str, str], url: str) -> Proc:
    LOGS.mkdir(parents=True, exist_ok=True)
    out = (LOGS / f"{name}.log").open("ab")
    popen = subprocess.Popen(  # our own interpreter and modules
        [sys.executable, *args], env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT, cwd=REPO
    )
    proc = Proc(name, popen, url)
    deadline = time.monotonic() + 60
    while True:
        if popen.poll() is not None:
            raise RuntimeError(f"{name} exited with {popen.returncode}; see {LOGS / (name + '.log')}")
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            proc.stop()
            raise RuntimeError(f"{name} did not come up at {url}")
        time.sleep(0.1)


@dataclass(frozen=True)
class Stack:
    env: dict[str, str]  # what the gateways run with
    peer: str
    gateways: tuple[str, str]
    redis_url: str

    @property
    def gateway(self) -> str:
        return self.gateways[0]

    def redis(self) -> redis.Redis:
        return redis.Redis.from_url(self.redis_url)


def gateway_env(platform: Platform, peer: str, down: str) -> dict[str, str]:
    upstreams = [
        {"name": "echo", "prefix": "/echo", "url": peer, "scope": "echo:read"},
        {"name": "echo", "prefix": "/upload", "url": peer, "scope": "echo:read", "metered": False},
        {"name": "echo", "prefix": "/stream", "url": peer, "metered": False},
        {"name": "echo", "prefix": "/slow", "url": peer, "timeout": SLOW_TIMEOUT_S},
        {"name": "down", "prefix": "/down", "url": down},
    ]
    env = dict(platform.env)
    for svc in ("identity", "billing", "notifier", "usage"):
        env[f"GATEWAY_{svc.upper()}_URL"] = peer  # the peer stands in for every platform service
    env.update(
        {
            "GATEWAY_UPSTREAMS": json.dumps(upstreams),
            "GATEWAY_TRUSTED_PROXIES": "127.0.0.1/32",
            "GATEWAY_ANONYMOUS_PER_MINUTE": str(ANONYMOUS_PER_MINUTE),
            "GATEWAY_MAX_BODY_BYTES": str(MAX_BODY),
            "GATEWAY_JWKS_MIN_REFETCH_SECONDS": "3",
            "CORS_ALLOWED_ORIGINS": "https://app.example.com",
            "LOG_LEVEL": "WARNING",
        }
    )
    return env


@pytest.fixture(scope="session")
def gw(platform: Platform) -> Iterator[Stack]:
    peer_port = free_port()
    peer_url = f"http://127.0.0.1:{peer_port}"
    peer = spawn("peer", ["-m", "tests.gateway.peer", str(peer_port)], platform.env, peer_url)
    env = gateway_env(platform, peer_url, f"http://127.0.0.1:{free_port()}")
    procs = [peer]
    try:
        for name in ("gateway-a", "gateway-b"):
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            procs.append(spawn(name, ["-m", "shared.cli", "serve", "gateway", "--port", str(port)], env, url))
        yield Stack(env, peer_url, (procs[1].url, procs[2].url), platform.env["REDIS_URL"])
    finally:
        for proc in reversed(procs):
            proc.stop()


@pytest.fixture(scope="session")
def real(platform: Platform, gw: Stack) -> Iterator[Stack]:
    """Two gateways in front of the platform's real services (identity, billing, usage, notifier);
    only the product upstream (`/echo`) is the peer."""
    env = gateway_env(platform, gw.peer, f"http://127.0.0.1:{free_port()}")
    for svc in ("identity", "billing", "notifier", "usage"):
        env.pop(f"GATEWAY_{svc.upper()}_URL")  # back to IDENTITY_URL, … of the platform
    procs: list[Proc] = []
    try:
        for name in ("gateway-real-a", "gateway-real-b"):
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            procs.append(spawn(name, ["-m", "shared.cli", "serve", "gateway", "--port", str(port)], env, url))
        yield Stack(env, gw.peer, (procs[0].url, procs[1].url), platform.env["REDIS_URL"])
    finally:
        for proc in reversed(procs):
            proc.stop()


@pytest.fixture
def rds(gw: Stack) -> Iterator[redis.Redis]:
    client = gw.redis()
    yield client
    client.close()


def keys_dir() -> Path:
    return TEST_ROOT / "keys"
