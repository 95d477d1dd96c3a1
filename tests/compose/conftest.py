"""The compose stack (compose.yaml) under pytest-docker: up --wait once, tests over HTTP, down -v.

These tests need a Docker engine with Compose v2 and the images (official ones, or the local
stand-ins from infra/offline/build-images.sh). They are collected only when asked for: by
`make test-compose` (infra/compose/test.sh sets CATALYTIC_COMPOSE=1 after preparing all that),
or when tests/compose is named on the pytest command line. A plain `pytest` leaves them out.

The stack runs as its own compose project (COMPOSE_PROJECT_NAME, default catalytic-test) with
the `dev` profile (fake Stripe), and publishes the gateway and the mail UI on free host ports.
CATALYTIC_COMPOSE_KEEP=1 leaves it running after the session for a look around, and a later
session with it set reuses the running stack instead of starting from empty volumes.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
COMPOSE_FILE = REPO / "compose.yaml"
OFFLINE_IMAGES = REPO / "infra" / "offline" / "images.env"
OFFICIAL_IMAGES = {
    "PYTHON_IMAGE": "python:3.11-slim-bookworm",
    "POSTGRES_IMAGE": "postgres:16-bookworm",
    "REDIS_IMAGE": "redis:7-bookworm",
    "MAILPIT_IMAGE": "axllent/mailpit:latest",
}
UP_TIMEOUT = int(os.environ.get("CATALYTIC_COMPOSE_UP_TIMEOUT", "420"))

T = TypeVar("T")


def _asked_for(config: pytest.Config) -> bool:
    if os.environ.get("CATALYTIC_COMPOSE") == "1":
        return True
    for arg in config.args:
        target = Path(arg.split("::", 1)[0]).resolve()
        if target == HERE or HERE in target.parents:
            return True
    return False


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    if collection_path.suffix == ".py" and collection_path.name.startswith("test_"):
        return None if _asked_for(config) else True
    return None


# --- environment the compose commands see -------------------------------------------------------


def _image_present(name: str) -> bool:
    found = subprocess.run(["docker", "image", "inspect", name], capture_output=True, check=False)
    return found.returncode == 0


def _read_env_file(path: Path) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    return {k.strip(): v.strip() for k, v in pairs if not k.lstrip().startswith("#")}


def _image_settings() -> dict[str, str]:
    """The official images when this engine has them, else the offline stand-ins if built."""
    if any(var in os.environ for var in OFFICIAL_IMAGES):
        return {}  # the caller chose
    if all(_image_present(name) for name in OFFICIAL_IMAGES.values()):
        return {}
    offline = _read_env_file(OFFLINE_IMAGES)
    if all(_image_present(offline[var]) for var in OFFICIAL_IMAGES):
        return {var: offline[var] for var in OFFICIAL_IMAGES}
    return {}  # let compose pull them (a machine with a registry)


@pytest.fixture(scope="session")
def compose_env() -> Iterator[dict[str, str]]:
    settings = {
        "COMPOSE_PROJECT_NAME": os.environ.get("COMPOSE_PROJECT_NAME", "catalytic-test"),
        "COMPOSE_PROFILES": "dev",
        # Empty: a free host port each (read back with `docker compose port`).
        "GATEWAY_PORT": "",
        "MAIL_UI_PORT": "",
        **_image_settings(),
    }
    saved = {k: os.environ.get(k) for k in settings}
    os.environ.update(settings)
    try:
        yield settings
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


# --- pytest-docker's fixtures, pointed at compose.yaml ------------------------------------------


@pytest.fixture(scope="session")
def docker_compose_file(compose_env: dict[str, str]) -> str:
    return str(COMPOSE_FILE)


@pytest.fixture(scope="session")
def docker_compose_project_name(compose_env: dict[str, str]) -> str:
    return compose_env["COMPOSE_PROJECT_NAME"]


KEEP = os.environ.get("CATALYTIC_COMPOSE_KEEP") == "1"


@pytest.fixture(scope="session")
def docker_setup() -> list[str]:
    # Leftovers of an interrupted run go first (unless kept on purpose: then it is reused).
    # infra/compose/test.sh has just built the images; run alone, the suite builds them itself.
    build = "" if os.environ.get("CATALYTIC_COMPOSE_BUILT") == "1" else "--build "
    up = f"up {build}--wait --wait-timeout {UP_TIMEOUT}"
    return [up] if KEEP else ["down -v --remove-orphans", up]


@pytest.fixture(scope="session")
def docker_cleanup() -> list[str]:
    return [] if KEEP else ["down -v --remove-orphans"]


# --- the stack as the tests use it ----------------------------------------------------------------


def poll(probe: Callable[[], T | None], timeout: float = 60.0, interval: float = 0.25) -> T:
    """Call `probe` until it returns something other than None; fail at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        found = probe()
        if found is not None:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"nothing after {timeout:.0f} s from {getattr(probe, '__name__', probe)}")
        time.sleep(interval)


@dataclass
class Compose:
    """The running stack: published URLs and `docker compose` for restarts and exec."""

    project: str
    services: Any  # pytest-docker's Services

    def run(self, *args: str, timeout: float = UP_TIMEOUT + 60) -> str:
        argv = ["docker", "compose", "-f", str(COMPOSE_FILE), "-p", self.project, *args]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
        if done.returncode != 0:
            raise AssertionError(
                f"{shlex.join(argv)} failed ({done.returncode}):\n{done.stdout}{done.stderr}"
            )
        return done.stdout

    def exec(self, service: str, *command: str, env: dict[str, str] | None = None) -> str:
        flags = [f"--env={k}={v}" for k, v in (env or {}).items()]
        return self.run("exec", "-T", *flags, service, *command, timeout=120)

    def ps(self) -> list[dict[str, Any]]:
        """`docker compose ps --all` as dicts (Service, State, Health, ExitCode, Publishers, …)."""
        out = self.run("ps", "--all", "--format", "json", timeout=30).strip()
        if out.startswith("["):
            rows: list[dict[str, Any]] = json.loads(out)
            return rows
        return [json.loads(line) for line in out.splitlines() if line.strip()]

    @property
    def gateway(self) -> str:
        return f"http://127.0.0.1:{self._port('gateway', 8000)}"

    @property
    def mail_api(self) -> str:
        return f"http://127.0.0.1:{self._port('mailpit', 8025)}/api/v1"

    def _port(self, service: str, port: int) -> int:
        # Not pytest-docker's cached port_for: ports change when the stack is recreated.
        out = self.run("port", service, str(port), timeout=30).strip().splitlines()
        return int(out[-1].rsplit(":", 1)[1])

    def up(self) -> None:
        self.run("up", "--wait", "--wait-timeout", str(UP_TIMEOUT))

    def state(self, service: str) -> str:
        ids = self.run("ps", "-q", "--all", service, timeout=30).split()
        if not ids:
            return "absent"
        out = subprocess.run(
            [
                "docker",
                "inspect",
                "-f",
                "{{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{end}}",
                ids[0],
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        return out.stdout.strip()

    def wait_healthy(self, service: str, timeout: float = 180.0) -> None:
        poll(lambda: True if self.state(service) == "running healthy" else None, timeout, 1.0)

    def kill(self, *services: str) -> None:
        """SIGKILL, as a crash would; the containers stay down (a kill counts as a manual stop)."""
        self.run("kill", "-s", "SIGKILL", *services)

        def all_exited() -> bool | None:
            return True if all(self.state(s).startswith("exited") for s in services) else None

        poll(all_exited, 30, 0.2)


@pytest.fixture(scope="session")
def compose(docker_services: Any, docker_compose_project_name: str) -> Compose:
    return Compose(docker_compose_project_name, docker_services)


@pytest.fixture(scope="session")
def gateway(compose: Compose) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=compose.gateway, timeout=30) as client:
        yield client


class Mailbox:
    """Mailpit's HTTP API (the real one, or the offline stand-in with the same subset)."""

    def __init__(self, base: str) -> None:
        self.http = httpx.Client(base_url=base, timeout=10)

    def to(self, address: str) -> list[dict[str, Any]]:
        found = self.http.get("/search", params={"query": f"to:{address}", "limit": 200})
        found.raise_for_status()
        return [m for m in found.json()["messages"] if any(t["Address"] == address for t in m["To"])]

    def subjects(self, address: str) -> list[str]:
        return [m["Subject"] for m in self.to(address)]

    def wait_for(self, address: str, subject_start: str, timeout: float = 60.0) -> dict[str, Any]:
        def probe() -> dict[str, Any] | None:
            return next((m for m in self.to(address) if m["Subject"].startswith(subject_start)), None)

        return poll(probe, timeout)

    def message(self, ident: str) -> dict[str, Any]:
        got = self.http.get(f"/message/{ident}")
        got.raise_for_status()
        body: dict[str, Any] = got.json()
        return body


@pytest.fixture(scope="session")
def mail(compose: Compose) -> Iterator[Mailbox]:
    box = Mailbox(compose.mail_api)
    yield box
    box.http.close()


# --- accounts -----------------------------------------------------------------------------------


@dataclass
class Account:
    email: str
    password: str
    company: str
    tenant_id: str
    user_id: str
    access_token: str

    @property
    def bearer(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}


def new_email(label: str) -> str:
    return f"{label}-{uuid.uuid4().hex[:10]}@compose.example.com"


def register(gateway: httpx.Client, label: str) -> Account:
    email, password, company = new_email(label), "Correct-Horse-Battery-9", f"Compose {label} Ltd"
    resp = gateway.post(
        "/auth/register", json={"email": email, "password": password, "company_name": company}
    )
    assert resp.status_code == 201, resp.text
    made = resp.json()
    return Account(email, password, company, made["tenant_id"], made["user_id"], made["access_token"])


@pytest.fixture(scope="session")
def owner(gateway: httpx.Client) -> Account:
    """A tenant owner registered once; later tests (restarts, volumes) check it survives."""
    return register(gateway, "owner")
