"""infra/deploy/deploy.sh and rollback.sh for real, on a temporary install of three releases.

The install is a git repository whose Makefile stands in for the project's (its `venv` target
does nothing: `.venv` links to this checkout's environment). `systemctl` is a script that
records its calls; migrations run against a fresh database on the test server; health is
checked against the running platform, or against a server that fails while the checked-out
release is marked broken.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import asyncpg
import pytest

from shared.devstack import DevEnv
from shared.ids import uuid7
from shared.migrations import pending
from shared.platform import SERVICES
from tests.conftest import REPO
from tests.platform import Platform

SCRIPTS = REPO / "infra" / "deploy"
MAKEFILE = "venv:\n\t@true\n\ntest:\n\ttouch .tests-ran\n"


def _git(cwd: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-c", "user.email=ops@example.com", "-c", "user.name=Ops", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


@pytest.fixture
def install(tmp_path: Path) -> tuple[Path, list[str]]:
    """APP_DIR with releases 1, 2 and 3 (3 is broken); release 1 is checked out."""
    app = tmp_path / "opt-catalytic"
    app.mkdir()
    _git(app, "init", "-q", "-b", "main")
    (app / "Makefile").write_text(MAKEFILE)
    (app / ".gitignore").write_text(".venv\n.deploy/\n.tests-ran\n")
    revs = []
    for n in (1, 2, 3):
        (app / "RELEASE").write_text(f"{n}\n")
        if n == 3:
            (app / "BROKEN").write_text("health fails\n")
        _git(app, "add", "-A")
        _git(app, "commit", "-q", "-m", f"release {n}")
        revs.append(_git(app, "rev-parse", "HEAD"))
    _git(app, "checkout", "-q", "--detach", revs[0])
    (app / ".venv").symlink_to(Path(sys.prefix))
    return app, revs


@pytest.fixture
async def fresh_database(peers: DevEnv) -> AsyncIterator[str]:
    name = f"deploy_{uuid7().hex[-8:]}"
    admin = await asyncpg.connect(peers.database_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield peers.database_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@pytest.fixture
def health_of_checkout(install: tuple[Path, list[str]]) -> Iterator[str]:
    """A /health and /ready that fail while the checked-out release has a BROKEN file."""
    app = install[0]

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(503 if (app / "BROKEN").exists() else 200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _env(tmp_path: Path, app: Path, database_url: str, health_url: str, **extra: str) -> dict[str, str]:
    env_file = tmp_path / "catalytic.env"
    env_file.write_text(f"DATABASE_URL={database_url}\n")
    env_file.chmod(0o600)
    systemctl = tmp_path / "systemctl"
    systemctl.write_text(f'#!/bin/sh\necho "$*" >> {tmp_path}/systemctl.log\n')
    systemctl.chmod(0o755)
    base = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")}
    return base | {
        "APP_DIR": str(app),
        "ENV_FILE": str(env_file),
        "SYSTEMCTL": str(systemctl),
        "HEALTH_URL": health_url,
        "HEALTH_TIMEOUT": "30",
        **extra,
    }


def _run(script: str, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPTS / script), *args], env=env, capture_output=True, text=True, timeout=300, check=False
    )


async def test_deploy_migrates_restarts_and_goes_live_then_rolls_back(
    install: tuple[Path, list[str]], fresh_database: str, platform: Platform, tmp_path: Path
) -> None:
    app, revs = install
    env = _env(tmp_path, app, fresh_database, platform.url("gateway"), SKIP_TESTS="1")
    done = _run("deploy.sh", env, revs[1])
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"deploy: {revs[1]} is live" in done.stdout
    assert _git(app, "rev-parse", "HEAD") == revs[1]
    assert (app / ".deploy" / "previous").read_text().strip() == revs[0]
    assert (app / ".deploy" / "current").read_text().strip() == revs[1]
    assert not (app / ".tests-ran").exists()  # SKIP_TESTS=1
    assert (tmp_path / "systemctl.log").read_text().splitlines() == ["restart catalytic.target"]
    for info in SERVICES.values():
        if info.schema:
            assert await pending(fresh_database, info.schema, info.migrations) == []

    done = _run("rollback.sh", env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"rollback: {revs[0]} is live" in done.stdout
    assert _git(app, "rev-parse", "HEAD") == revs[0]
    assert (app / ".deploy" / "current").read_text().strip() == revs[0]
    assert len((tmp_path / "systemctl.log").read_text().splitlines()) == 2


def test_failed_health_rolls_back(
    install: tuple[Path, list[str]], fresh_database: str, health_of_checkout: str, tmp_path: Path
) -> None:
    app, revs = install
    env = _env(tmp_path, app, fresh_database, health_of_checkout, HEALTH_TIMEOUT="3")
    done = _run("deploy.sh", env, revs[2])
    assert done.returncode == 1, done.stdout + done.stderr
    assert "health check failed, rolling back" in done.stderr
    assert (app / ".tests-ran").exists()  # the test step runs unless SKIP_TESTS=1
    assert f"rollback: {revs[0]} is live" in done.stdout
    assert _git(app, "rev-parse", "HEAD") == revs[0]
    assert (app / ".deploy" / "current").read_text().strip() == revs[0]
    assert (tmp_path / "systemctl.log").read_text().splitlines() == ["restart catalytic.target"] * 2


def test_rollback_without_a_previous_deploy_refuses(install: tuple[Path, list[str]], tmp_path: Path) -> None:
    app, revs = install
    env = _env(tmp_path, app, "postgresql://unused/db", "http://127.0.0.1:9")
    done = _run("rollback.sh", env)
    assert done.returncode == 1
    assert "no previous deployment recorded" in done.stderr
    assert _git(app, "rev-parse", "HEAD") == revs[0]
    assert not (tmp_path / "systemctl.log").exists()
