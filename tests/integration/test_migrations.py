from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from shared.devstack import DevEnv
from shared.ids import uuid7
from shared.migrations import MigrationError, migrate


@pytest.fixture
async def fresh(peers: DevEnv) -> AsyncIterator[str]:
    name = f"m_{uuid7().hex[-10:]}"
    yield name
    conn = await asyncpg.connect(peers.database_url)
    await conn.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")
    await conn.close()


def _write(directory: Path, files: dict[str, str]) -> Path:
    directory.mkdir(exist_ok=True)
    for name, sql in files.items():
        (directory / name).write_text(sql)
    return directory


async def _tables(url: str, schema: str) -> set[str]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = $1", schema)
        return {r["tablename"] for r in rows}
    finally:
        await conn.close()


async def test_fresh_apply_then_reapply_is_a_no_op(peers: DevEnv, fresh: str, tmp_path: Path) -> None:
    d = _write(
        tmp_path / "m",
        {
            "0001_things.sql": "CREATE TABLE things (id int PRIMARY KEY);",
            "0002_more.sql": "ALTER TABLE things ADD COLUMN name text;",
        },
    )
    first = await migrate(peers.database_url, fresh, d)
    assert first == ["bus/0001_outbox_inbox", "service/0001_things", "service/0002_more"]
    assert {"things", "outbox", "inbox", "schema_migrations"} <= await _tables(peers.database_url, fresh)
    assert await migrate(peers.database_url, fresh, d) == []
    _write(d, {"0003_index.sql": "CREATE INDEX things_name ON things (name);"})
    assert await migrate(peers.database_url, fresh, d) == ["service/0003_index"]


async def test_edited_applied_migration_is_refused(peers: DevEnv, fresh: str, tmp_path: Path) -> None:
    d = _write(tmp_path / "m", {"0001_things.sql": "CREATE TABLE things (id int);"})
    await migrate(peers.database_url, fresh, d)
    (d / "0001_things.sql").write_text("CREATE TABLE things (id bigint);")
    with pytest.raises(MigrationError, match="edited after it was applied"):
        await migrate(peers.database_url, fresh, d)


async def test_failed_migration_leaves_nothing_half_applied(
    peers: DevEnv, fresh: str, tmp_path: Path
) -> None:
    d = _write(tmp_path / "m", {"0001_bad.sql": "CREATE TABLE ok_part (id int); SELECT 1/0;"})
    with pytest.raises(asyncpg.DivisionByZeroError):
        await migrate(peers.database_url, fresh, d)
    assert "ok_part" not in await _tables(peers.database_url, fresh)
    (d / "0001_bad.sql").write_text("CREATE TABLE ok_part (id int);")
    assert await migrate(peers.database_url, fresh, d) == ["service/0001_bad"]


async def test_two_concurrent_runners_apply_each_file_once(peers: DevEnv, fresh: str, tmp_path: Path) -> None:
    # No IF NOT EXISTS and a sleep: without the advisory lock the second runner would fail or duplicate.
    d = _write(
        tmp_path / "m",
        {
            "0001_slow.sql": "SELECT pg_sleep(0.5); CREATE TABLE slow (id int);",
            "0002_log.sql": "CREATE TABLE log (n int); INSERT INTO log VALUES (1);",
        },
    )
    results = await asyncio.gather(*(migrate(peers.database_url, fresh, d) for _ in range(2)))
    assert sorted(len(r) for r in results) == [0, 3]
    conn = await asyncpg.connect(peers.database_url)
    try:
        assert await conn.fetchval(f"SELECT count(*) FROM {fresh}.log") == 1
        assert await conn.fetchval(f"SELECT count(*) FROM {fresh}.schema_migrations") == 3
    finally:
        await conn.close()


async def test_bad_file_name_is_refused(peers: DevEnv, fresh: str, tmp_path: Path) -> None:
    d = _write(tmp_path / "m", {"1_oops.sql": "SELECT 1;"})
    with pytest.raises(MigrationError, match="name must look like"):
        await migrate(peers.database_url, fresh, d)


async def test_runtime_role_cannot_touch_another_schema(peers: DevEnv, fresh: str, tmp_path: Path) -> None:
    role = f"r_{fresh}"
    admin = await asyncpg.connect(peers.database_url)
    try:
        await admin.execute(f"CREATE ROLE {role} LOGIN PASSWORD 'pw'")
        other = f"{fresh}_other"
        await admin.execute(f"CREATE SCHEMA {other}; CREATE TABLE {other}.secret (x int)")
        d = _write(tmp_path / "m", {"0001_t.sql": "CREATE TABLE t (x int);"})
        await migrate(peers.database_url, fresh, d, runtime_role=role)
        url = peers.database_url.replace("postgres:postgres@", f"{role}:pw@")
        conn = await asyncpg.connect(url)
        try:
            await conn.execute(f"INSERT INTO {fresh}.t VALUES (1)")
            assert await conn.fetchval(f"SELECT count(*) FROM {fresh}.t") == 1
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.fetch(f"SELECT * FROM {other}.secret")
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute(f"CREATE TABLE {fresh}.sneaky (x int)")
        finally:
            await conn.close()
        await admin.execute(f"DROP SCHEMA {other} CASCADE")
    finally:
        await admin.execute(f"DROP SCHEMA IF EXISTS {fresh} CASCADE")
        await admin.execute(f"DROP OWNED BY {role}; DROP ROLE {role}")
        await admin.close()
