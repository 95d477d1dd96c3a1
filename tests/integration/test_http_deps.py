"""A refused caller must not leave the request's transaction open."""

from __future__ import annotations

import time
from pathlib import Path

import asyncpg
from litestar import get
from litestar.testing import AsyncTestClient

from shared.auth import keys
from shared.auth.assertion import HEADER, AssertionSigner, Caller
from shared.db import Connection
from shared.devstack import DevEnv
from shared.http import create_app
from shared.http.caller import CALLER
from shared.http.deps import TX
from shared.ids import uuid7
from shared.settings import CommonSettings
from tests.conftest import scratch_redis_url


@get("/admin-only")
async def admin_only(tx: Connection, admin: Caller) -> dict[str, int]:
    return {"one": await tx.fetchval("SELECT 1")}


async def test_refused_requests_leave_no_open_transaction(peers: DevEnv, tmp_path: Path) -> None:
    keys.generate("test", tmp_path)
    settings = CommonSettings(
        database_url=peers.database_url,
        redis_url=scratch_redis_url(peers),
        assertion_public_key=(tmp_path / "assertion_public.pem").read_text(),
    )
    app = create_app(
        service="leaktest",
        settings=settings,
        route_handlers=[admin_only],
        schema="public",
        dependencies={**TX, **CALLER},
    )
    signer = AssertionSigner((tmp_path / "assertion_private.pem").read_text())

    def headers(role: str) -> dict[str, str]:
        caller = Caller(
            kind="user",
            aud="leaktest",
            exp=time.time() + 30,
            tenant_id=uuid7(),
            user_id=uuid7(),
            role=role,
            plan="free",
        )
        return {HEADER: signer.sign(caller)}

    async with AsyncTestClient(app) as client:
        for _ in range(30):  # three times the pool size
            refused = await client.get("/admin-only", headers=headers("member"))
            assert refused.status_code == 403
            assert refused.json()["code"] == "insufficient_role"
        allowed = await client.get("/admin-only", headers=headers("admin"))
        assert allowed.status_code == 200
        assert allowed.json() == {"one": 1}
        conn = await asyncpg.connect(peers.database_url)
        try:
            stuck = await conn.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'leaktest'"
                " AND state = 'idle in transaction'"
            )
        finally:
            await conn.close()
        assert stuck == 0


@get("/lose-connection")
async def lose_connection(tx: Connection) -> dict[str, int]:
    # Postgres ends this backend, as a restart or failover would.
    await tx.execute("SELECT pg_terminate_backend(pg_backend_pid())")
    return {"one": 1}


async def test_a_lost_database_connection_answers_503_not_500(peers: DevEnv, tmp_path: Path) -> None:
    keys.generate("test", tmp_path)
    settings = CommonSettings(
        database_url=peers.database_url,
        redis_url=scratch_redis_url(peers),
        assertion_public_key=(tmp_path / "assertion_public.pem").read_text(),
    )
    app = create_app(
        service="losttest",
        settings=settings,
        route_handlers=[lose_connection],
        schema="public",
        dependencies=TX,
    )
    async with AsyncTestClient(app) as client:
        resp = await client.get("/lose-connection")
        assert resp.status_code == 503, resp.text
        assert resp.headers["content-type"].startswith("application/problem+json")
        assert resp.json()["code"] == "unavailable"
        assert resp.headers["retry-after"] == "1"
