"""Extra peers for the preflight tests: a Redis that requires a password, a Sentry stand-in."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from shared.devstack.redis import ping, redis_server_binary
from tests.conftest import TEST_PORTS, TEST_ROOT

REDIS_PASSWORD = "preflight-redis-pw"  # a throwaway test server


@pytest.fixture(scope="session")
def locked_redis() -> Iterator[str]:
    """A redis-server with `requirepass`; yields its URL with the password."""
    port = TEST_PORTS.redis + 5
    workdir = TEST_ROOT / "redis-auth"
    workdir.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        [
            *(redis_server_binary(), "--port", str(port), "--bind", "127.0.0.1"),
            *("--requirepass", REDIS_PASSWORD, "--save", "", "--appendonly", "no", "--dir", str(workdir)),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://:{REDIS_PASSWORD}@127.0.0.1:{port}/0"
    try:
        deadline = time.monotonic() + 20
        while not ping(url):
            assert proc.poll() is None and time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


class SentryStandIn(ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Envelope)
        self.received: list[tuple[str, dict[str, str], bytes]] = []

    @property
    def dsn(self) -> str:
        return f"http://publickey@127.0.0.1:{self.server_address[1]}/42"


class _Envelope(BaseHTTPRequestHandler):
    server: SentryStandIn

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.server.received.append((self.path, dict(self.headers), body))
        ok = self.path == "/api/42/envelope/" and "sentry_key=publickey" in self.headers.get(
            "X-Sentry-Auth", ""
        )
        self.send_response(200 if ok else 403)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"id": "accepted"}')

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def sentry() -> Iterator[SentryStandIn]:
    server = SentryStandIn()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def fresh_backup(directory: Path, age_hours: float = 0.0) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    dump = directory / "catalytic-20260101T031500Z.sql.gz"
    dump.write_bytes(b"\x1f\x8b")
    stamp = time.time() - age_hours * 3600
    os.utime(dump, (stamp, stamp))
    return dump
