"""Operator commands of docs/deploy.md not run elsewhere: keys, migrate --create-roles, backup, restore."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from shared.devstack import DevEnv
from shared.ids import uuid7
from shared.migrations import pending
from shared.platform import SERVICES
from tests.ops.envs import run_cli, run_cli_async
from tests.platform import Platform


def test_keys_generate_writes_mode_600_and_refuses_to_overwrite(tmp_path: Path) -> None:
    target = tmp_path / "keys"
    code, out = run_cli("keys", "generate", "production", "--dir", str(target))
    assert code == 0, out
    files = sorted(p.name for p in target.iterdir())
    assert "jwt_private.pem" in files and "secrets.key" in files
    assert all(oct(p.stat().st_mode & 0o777) == "0o600" for p in target.iterdir())
    assert (target / "secrets.key").read_text().startswith("production:")
    before = (target / "secrets.key").read_text()
    code, out = run_cli("keys", "generate", "production", "--dir", str(target))
    assert code == 1 and "use --force to replace" in out
    assert (target / "secrets.key").read_text() == before
    code, out = run_cli("keys", "generate", "production", "--dir", str(target), "--force")
    assert code == 0 and (target / "secrets.key").read_text() != before


@pytest.fixture
async def two_databases(peers: DevEnv) -> AsyncIterator[tuple[str, str]]:
    names = [f"cmd_{uuid7().hex[-8:]}", f"cmd_{uuid7().hex[-8:]}"]
    admin = await asyncpg.connect(peers.database_url)
    try:
        for name in names:
            await admin.execute(f'CREATE DATABASE "{name}"')
        base = peers.database_url.rsplit("/", 1)[0]
        yield f"{base}/{names[0]}", f"{base}/{names[1]}"
    finally:
        for name in names:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def test_migrate_create_roles_then_backup_and_restore(
    two_databases: tuple[str, str],
    platform: Platform,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    source, target = two_databases
    monkeypatch.setenv("DATABASE_URL", source)
    role_urls = {}
    for name, info in SERVICES.items():
        if info.schema:
            # The platform's role passwords: --create-roles sets them, and the platform keeps working.
            url = (
                platform.env[f"{name.upper()}_DATABASE_URL"].rsplit("/", 1)[0]
                + "/"
                + source.rsplit("/", 1)[1]
            )
            role_urls[name] = url
            monkeypatch.setenv(f"{name.upper()}_DATABASE_URL", url)
    code, out = await run_cli_async("migrate", "--create-roles")
    assert code == 0, out
    assert "login roles ready: identity_svc, billing_svc, notifier_svc, usage_svc" in out
    for info in SERVICES.values():
        if info.schema:
            assert await pending(source, info.schema, info.migrations) == []
    conn = await asyncpg.connect(role_urls["usage"])  # the role logs in and may write its schema
    try:
        await conn.execute(
            "INSERT INTO usage.audit_logs (id, actor_kind, action, occurred_at)"
            " VALUES ($1, 'system', 'x', now())",
            uuid7(),
        )
    finally:
        await conn.close()

    backups = tmp_path / "backups"
    code, out = await run_cli_async("backup", "--dir", str(backups), "--retention-days", "14")
    assert code == 0, out
    [dump] = list(backups.glob("catalytic-*.sql.gz"))
    assert f"backup written: {dump}" in out

    monkeypatch.setenv("DATABASE_URL", target)
    code, out = await run_cli_async("restore", str(dump))
    assert code == 0, out
    conn = await asyncpg.connect(target)
    try:
        assert await conn.fetchval("SELECT count(*) FROM usage.audit_logs") == 1
    finally:
        await conn.close()
    assert os.environ["DATABASE_URL"] == target
