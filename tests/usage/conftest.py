"""Fixtures of the usage tests: the running platform, its Redis (db 0) and the usage schema."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest
from redis.asyncio import Redis

from shared.devstack import DevEnv
from shared.http.app import redis_client
from tests.platform import Platform


@pytest.fixture
async def api(platform: Platform) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=platform.url("usage"), timeout=30) as client:
        yield client


@pytest.fixture
async def bus(peers: DevEnv) -> AsyncIterator[Redis]:
    """The platform's Redis, where the gateway's batches and the domain streams live."""
    client = redis_client(peers.redis_url)
    yield client
    await client.aclose()


@pytest.fixture
async def db(peers: DevEnv, platform: Platform) -> AsyncIterator[asyncpg.Connection]:
    """The usage schema as its owner, to check what the API does not show (raw rows, privileges)."""
    conn = await asyncpg.connect(peers.database_url, server_settings={"search_path": "usage"})
    yield conn
    await conn.close()
