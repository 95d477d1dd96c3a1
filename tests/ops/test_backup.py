"""Back up a populated database, restore it into an empty one, compare every table."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from shared.devstack import DevEnv
from shared.events import IdentityPing, new_event
from shared.ids import uuid7
from shared.ops import backup
from shared.setup import migrate_all


def _db_url(admin_url: str, name: str) -> str:
    return admin_url.rsplit("/", 1)[0] + f"/{name}"


@pytest.fixture
async def databases(peers: DevEnv) -> AsyncIterator[tuple[str, str]]:
    names = [f"bk_src_{uuid7().hex[-8:]}", f"bk_dst_{uuid7().hex[-8:]}"]
    admin = await asyncpg.connect(peers.database_url)
    try:
        for name in names:
            await admin.execute(f'CREATE DATABASE "{name}"')
        yield _db_url(peers.database_url, names[0]), _db_url(peers.database_url, names[1])
    finally:
        for name in names:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def _fingerprints(url: str) -> dict[str, tuple[int, str]]:
    conn = await asyncpg.connect(url)
    try:
        tables = await conn.fetch(
            "SELECT schemaname, tablename FROM pg_tables WHERE schemaname = ANY($1::text[])", backup.schemas()
        )
        found: dict[str, tuple[int, str]] = {}
        for t in tables:
            name = f'"{t["schemaname"]}"."{t["tablename"]}"'
            row = await conn.fetchrow(
                f"SELECT count(*) AS n, coalesce(md5(string_agg(x::text, '|' ORDER BY x::text)), '') AS h "
                f"FROM {name} x"
            )
            found[name] = (row["n"], row["h"])
        return found
    finally:
        await conn.close()


async def test_backup_then_restore_gives_identical_tables(databases: tuple[str, str], tmp_path: Path) -> None:
    source, target = databases
    await migrate_all(source)
    conn = await asyncpg.connect(source)
    try:
        for i in range(50):
            event = new_event(IdentityPing(note=f"n{i} 'quoted' \\ ünïcode"), tenant_id=uuid7())
            await conn.execute(
                "INSERT INTO usage.audit_logs (id, tenant_id, actor_kind, action, data, occurred_at)"
                " VALUES ($1, $2, 'system', $3, $4::jsonb, $5)",
                event.id,
                event.tenant_id,
                event.type,
                '{"k": "v"}',
                event.occurred_at,
            )
            await conn.execute(
                "INSERT INTO identity.outbox (id, stream, type, payload)"
                " VALUES ($1, 'identity.events', $2, $3)",
                event.id,
                event.type,
                b"\x00\x01payload",
            )
    finally:
        await conn.close()
    before = await _fingerprints(source)
    assert before['"usage"."audit_logs"'][0] == 50
    dump = backup.backup(source, tmp_path / "backups", retention_days=7)
    assert dump.name.startswith("catalytic-") and dump.name.endswith(".sql.gz")
    assert oct(dump.stat().st_mode & 0o777) == "0o600"
    backup.restore(target, dump)
    assert await _fingerprints(target) == before


def test_retention_removes_only_old_dumps(tmp_path: Path) -> None:
    old, fresh = (
        tmp_path / "catalytic-20000101T000000Z.sql.gz",
        tmp_path / "catalytic-29990101T000000Z.sql.gz",
    )
    other = tmp_path / "unrelated.sql.gz"
    for path in (old, fresh, other):
        path.write_bytes(b"x")
    os.utime(old, (0, 0))
    os.utime(other, (0, 0))
    assert backup.prune(tmp_path, retention_days=14) == [old]
    assert fresh.exists() and other.exists()
    assert backup.latest(tmp_path) == fresh


async def test_failed_dump_leaves_no_file(tmp_path: Path, peers: DevEnv) -> None:
    with pytest.raises(backup.BackupError, match="pg_dump failed"):
        backup.backup(_db_url(peers.database_url, "no_such_database"), tmp_path)
    assert list(tmp_path.iterdir()) == []
