"""Session peers for the whole suite: a real PostgreSQL and a real Redis, started once."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
from redis.asyncio import Redis

from shared.db import Pool, create_pool
from shared.devstack import DevEnv, DevStack, Ports
from shared.http.app import redis_client
from shared.ids import uuid7
from shared.migrations import migrate

REPO = Path(__file__).resolve().parent.parent
# CATALYTIC_TEST_SLOT=N moves every port and directory, so several suites can run at once.
SLOT = int(os.environ.get("CATALYTIC_TEST_SLOT", "0"))
TEST_PORTS = Ports(
    postgres=55433 + 10 * SLOT, redis=56380 + 10 * SLOT, smtp=1026 + 10 * SLOT, stripe=8421 + 10 * SLOT
)
TEST_ROOT = REPO / ".dev" / (f"test{SLOT}" if SLOT else "test")


@pytest.fixture(scope="session")
def stack() -> Iterator[DevStack]:
    # Ports apart from `make run`'s, so the suite runs while a dev stack is up.
    stack = DevStack(TEST_ROOT, TEST_PORTS, peers=True, fast=True)
    stack.start()
    try:
        yield stack
    finally:
        stack.stop()


@pytest.fixture(scope="session")
def peers(stack: DevStack) -> DevEnv:
    return stack.start()


@pytest.fixture
async def schema(peers: DevEnv) -> AsyncIterator[str]:
    """A fresh schema with the bus tables (outbox, inbox) and an `effects` table for handlers."""
    name = f"t_{uuid7().hex[-12:]}"
    empty = REPO / "tests" / "data" / "no_migrations"
    await migrate(peers.database_url, name, empty)
    conn = await asyncpg.connect(peers.database_url)
    try:
        await conn.execute(f"CREATE TABLE {name}.effects (event_id uuid NOT NULL, worker text)")
        yield name
    finally:
        await conn.execute(f"DROP SCHEMA {name} CASCADE")
        await conn.close()


@pytest.fixture
async def pool(peers: DevEnv, schema: str) -> AsyncIterator[Pool]:
    pool = await create_pool(peers.database_url, schema=schema, application_name="tests", max_size=5)
    yield pool
    await pool.close()


def scratch_redis_url(peers: DevEnv) -> str:
    """Database 1: bus tests may flush it while the e2e platform keeps its streams in 0."""
    # (Database 2 and up are free for other suites that need a scratch Redis.)
    return peers.redis_url.rsplit("/", 1)[0] + "/1"


@pytest.fixture
async def redis(peers: DevEnv) -> AsyncIterator[Redis]:
    client = redis_client(scratch_redis_url(peers))
    yield client
    await client.aclose()


# One session-wide platform for every suite (e2e, services, gateway): registered here only,
# so no directory gets a second copy of it.
from tests.platform import platform  # noqa: E402, F401
