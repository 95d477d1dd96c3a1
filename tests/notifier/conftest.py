"""The notifier in this process against real peers: Postgres, Redis, its own SMTP catcher, HTTP receivers.

The API runs under uvicorn and the worker (consumers, relay, arq jobs, dispatcher) as tasks on
the test loop, with a fresh schema and Redis database 3, so the e2e platform (schema `notifier`,
database 0) can run beside it. Receivers listen on 127.0.0.2, the only range these settings
allow webhooks to reach: every other loopback name stays an SSRF target the tests can try.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest
import uvicorn
from redis.asyncio import Redis

from services.notifier.app import app, worker
from services.notifier.settings import NotifierSettings
from shared.db import Pool, create_pool
from shared.devstack import DevEnv
from shared.devstack.mailcatcher import start_mailcatcher
from shared.devstack.procs import Child
from shared.http.app import redis_client
from shared.ids import uuid7
from shared.migrations import migrate
from shared.setup import local_keys_env
from shared.worker import run_worker
from tests.conftest import TEST_ROOT
from tests.notifier.helpers import RECEIVER_HOST, Mailbox

MIGRATIONS = Path(__file__).resolve().parents[2] / "services" / "notifier" / "migrations"

REDIS_DB = 3  # scratch database of this suite (0: platform, 1: bus tests)

# Short schedules so retries and auto-disable happen within a test.
EMAIL_BACKOFF = (0.3, 0.3, 0.5, 0.5, 1.0, 1.0, 1.0)
WEBHOOK_SCHEDULE = (0.0, 0.3, 0.5, 0.8, 1.0, 1.0, 1.0, 1.0)
DISABLE_AFTER = 3.0


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@dataclass
class Catcher:
    """An SMTP catcher of our own (the devstack's module), so tests may stop it and inject faults."""

    host: str
    port: int
    root: Path
    child: Child | None = None

    @property
    def mailbox(self) -> Mailbox:
        return Mailbox(self.root / "mail", self.root / "smtp-control.json")

    def start(self) -> None:
        self.child = start_mailcatcher(
            self.host, self.port, self.root / "mail", self.root / "smtp-control.json", self.root
        )

    def stop(self) -> None:
        if self.child is not None:
            self.child.stop()
            self.child = None


@dataclass
class Notifier:
    base_url: str
    settings: NotifierSettings
    schema: str
    pool: Pool  # the test's own view of the schema
    redis: Redis  # the notifier's Redis database
    catcher: Catcher

    @property
    def mailbox(self) -> Mailbox:
        return self.catcher.mailbox


@pytest.fixture(scope="session")
def keys() -> dict[str, str]:
    return local_keys_env(TEST_ROOT / "keys", "test")


@pytest.fixture(scope="session")
def catcher() -> Iterator[Catcher]:
    root = TEST_ROOT / "notifier-smtp"
    shutil.rmtree(root, ignore_errors=True)  # mail of earlier runs would only slow the lookups
    root.mkdir(parents=True)
    found = Catcher("127.0.0.1", free_port(), root)
    found.start()
    try:
        yield found
    finally:
        found.stop()


def notifier_settings(
    peers: DevEnv, keys: dict[str, str], smtp_port: int, **extra: object
) -> NotifierSettings:
    values: dict[str, object] = {
        "app_env": "test",
        "log_level": "WARNING",
        "database_url": peers.database_url,
        "redis_url": peers.redis_url.rsplit("/", 1)[0] + f"/{REDIS_DB}",
        "secrets_key": Path(keys["SECRETS_KEY_FILE"]).read_text().strip(),
        "assertion_public_key": Path(keys["ASSERTION_PUBLIC_KEY_FILE"]).read_text(),
        "frontend_url": "https://app.example.test",
        "email_from": "Catalytic Cloud <no-reply@catalytic.test>",
        "product_name": "Catalytic Cloud",
        "smtp_host": "127.0.0.1",
        "smtp_port": smtp_port,
        "smtp_timeout": 5.0,
        "email_backoff": EMAIL_BACKOFF,
        "webhook_timeout": 3.0,
        "webhook_schedule": WEBHOOK_SCHEDULE,
        "webhook_disable_after": DISABLE_AFTER,
        "webhook_allowed_networks": (f"{RECEIVER_HOST}/32",),
        "dispatch_poll_interval": 0.5,
        "sweep_interval": 5.0,
    }
    values.update(extra)
    return NotifierSettings(**values)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
async def notifier(peers: DevEnv, keys: dict[str, str], catcher: Catcher) -> AsyncIterator[Notifier]:
    schema = f"n_{uuid7().hex[-12:]}"
    await migrate(peers.database_url, schema, MIGRATIONS)
    settings = notifier_settings(peers, keys, catcher.port)
    redis = redis_client(settings.redis_url)
    await redis.flushdb()
    pool = await create_pool(peers.database_url, schema=schema, application_name="notifier-tests", max_size=4)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            app(settings, schema),
            host="127.0.0.1",
            port=port,
            log_config=None,
            access_log=False,
            lifespan="on",
        )
    )
    server_task = asyncio.create_task(server.serve())
    stop = asyncio.Event()
    worker_task = asyncio.create_task(run_worker(worker(settings, schema), stop))
    try:
        while not server.started:
            if server_task.done():
                server_task.result()
            await asyncio.sleep(0.02)
        yield Notifier(f"http://127.0.0.1:{port}", settings, schema, pool, redis, catcher)
    finally:
        stop.set()
        server.should_exit = True
        await asyncio.wait_for(asyncio.gather(worker_task, server_task, return_exceptions=True), 30)
        await pool.close()
        await redis.flushdb()
        await redis.aclose()
        conn = await asyncpg.connect(peers.database_url)
        try:
            await conn.execute(f"DROP SCHEMA {schema} CASCADE")
        finally:
            await conn.close()
