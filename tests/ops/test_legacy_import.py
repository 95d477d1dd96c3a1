"""`catalytic import-legacy` from SQLite and from PostgreSQL into freshly migrated schemas."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from services.identity.service.passwords import PasswordHasher
from shared.crypto import SecretBox
from shared.devstack import DevEnv
from shared.ids import uuid7
from shared.ops.legacy.accounts import RESET_REQUIRED
from shared.setup import migrate_all
from tests.ops import legacy_data
from tests.ops.envs import run_cli_async
from tests.platform import Platform

# read, imported, skipped — per legacy table, for the data in legacy_data.
EXPECTED = {
    "tenants": (3, 2, 1),
    "users": (5, 3, 2),
    "subscriptions": (2, 1, 1),
    "api_keys": (2, 1, 1),
    "usage_logs": (6, 5, 1),
    "audit_logs": (3, 2, 1),
    "webhooks": (3, 2, 1),
    "webhook_deliveries": (3, 2, 1),
}
TARGET_TABLES = {
    "identity.tenants": 2,
    "identity.users": 3,
    "identity.api_keys": 1,
    "billing.subscriptions": 1,
    "billing.customers": 1,
    "usage.usage_logs": 5,
    "usage.audit_logs": 2,
    "notifier.webhooks": 2,
    "notifier.webhook_deliveries": 2,
    "notifier.members": 3,
}


async def _database(admin_url: str, prefix: str) -> str:
    name = f"{prefix}_{uuid7().hex[-8:]}"
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return admin_url.rsplit("/", 1)[0] + f"/{name}"


async def _drop(admin_url: str, url: str) -> None:
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture
async def target(peers: DevEnv) -> AsyncIterator[str]:
    url = await _database(peers.database_url, "legacy_target")
    await migrate_all(url)
    yield url
    await _drop(peers.database_url, url)


@pytest.fixture
def secrets_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, target: str) -> str:
    key = "production:" + "A" * 43 + "="
    monkeypatch.setenv("SECRETS_KEY", key)
    monkeypatch.setenv("DATABASE_URL", target)
    return key


async def _counts(url: str) -> dict[str, int]:
    conn = await asyncpg.connect(url)
    try:
        return {t: await conn.fetchval(f"SELECT count(*) FROM {t}") for t in TARGET_TABLES}
    finally:
        await conn.close()


def _report_counts(out: str) -> dict[str, tuple[int, int, int]]:
    found = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[0] in EXPECTED:
            found[parts[0]] = (int(parts[1]), int(parts[2]), int(parts[3]))
    return found


async def test_sqlite_import_dry_run_then_twice(tmp_path: Path, target: str, secrets_env: str) -> None:
    source = legacy_data.build_sqlite(tmp_path / "legacy.db")
    empty = await _counts(target)

    code, out = await run_cli_async("import-legacy", "--source", source, "--dry-run")
    assert code == 0, out
    assert "dry run: nothing was written" in out
    assert _report_counts(out) == EXPECTED
    assert await _counts(target) == empty

    code, first = await run_cli_async("import-legacy", "--source", source)
    assert code == 0, first
    assert _report_counts(first) == EXPECTED
    assert first.replace("import committed", "") == out.replace("dry run: nothing was written", "")
    assert await _counts(target) == TARGET_TABLES
    assert "skipped 1: invalid email" in first and "skipped 1: not an http(s) URL" in first
    assert "incompatible key" in first
    assert "dev@acme.example (bcrypt)" in first and "must reset their password" in first

    code, second = await run_cli_async("import-legacy", "--source", source)
    assert code == 0, second
    again = _report_counts(second)
    assert {t: n[1] for t, n in again.items()} == dict.fromkeys(EXPECTED, 0)
    assert await _counts(target) == TARGET_TABLES
    assert "already imported" in second

    await _spot_check(target, secrets_env)


async def _spot_check(url: str, secrets_key: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        owner = await conn.fetchrow("SELECT * FROM identity.users WHERE email = 'owner@acme.example'")
        member = await conn.fetchrow("SELECT * FROM identity.users WHERE email = 'dev@acme.example'")
        tenant = await conn.fetchrow("SELECT * FROM identity.tenants WHERE id = $1", owner["tenant_id"])
        beta = await conn.fetchrow("SELECT * FROM identity.tenants WHERE name = 'Beta'")
        key = await conn.fetchrow("SELECT * FROM identity.api_keys")
        hook = await conn.fetchrow("SELECT * FROM notifier.webhooks WHERE enabled")
        old_hook = await conn.fetchrow("SELECT * FROM notifier.webhooks WHERE NOT enabled")
        sub = await conn.fetchrow("SELECT * FROM billing.subscriptions")
        monthly = await conn.fetchrow("SELECT * FROM usage.usage_monthly WHERE tenant_id = $1", tenant["id"])
        delivery = await conn.fetch(
            "SELECT status, last_error FROM notifier.webhook_deliveries ORDER BY status"
        )
    finally:
        await conn.close()
    assert tenant["name"] == "Acme" and tenant["plan"] == "professional" and beta["plan"] == "free"
    assert owner["role"] == "owner" and owner["email_verified_at"] is not None
    assert owner["password_hash"] == legacy_data.ARGON2_HASH and member["password_hash"] == RESET_REQUIRED
    hasher = PasswordHasher("test", 1, 1)
    try:
        assert await hasher.verify(owner["password_hash"], legacy_data.PASSWORD)
        assert not await hasher.verify(member["password_hash"], legacy_data.PASSWORD)
    finally:
        hasher.close()
    assert key["prefix"] == legacy_data.KEY_PREFIX and key["scopes"] == ["read", "write"]
    assert key["tenant_id"] == tenant["id"]
    assert hook["secret"] != legacy_data.WEBHOOK_SECRET
    assert SecretBox(secrets_key).open(hook["secret"], f"webhook:{hook['id']}") == legacy_data.WEBHOOK_SECRET
    assert hook["event_types"] == ["invoice.paid", "user.created"]
    assert old_hook["event_types"] is None and old_hook["disabled_reason"] == "disabled before the import"
    assert sub["tenant_id"] == tenant["id"] and sub["stripe_customer_id"] == "cus_Acme1"
    assert (monthly["calls"], monthly["metered_calls"]) == (3, 2)  # the 429 is not billed
    assert [tuple(d) for d in delivery] == [
        ("failed", "not delivered before the import"),
        ("succeeded", None),
    ]


async def test_postgres_source_gives_the_same_report(peers: DevEnv, target: str, secrets_env: str) -> None:
    source = await _database(peers.database_url, "legacy_source")
    try:
        await legacy_data.build_postgres(source)
        code, out = await run_cli_async("import-legacy", "--source", source)
        assert code == 0, out
        assert _report_counts(out) == EXPECTED
        assert await _counts(target) == TARGET_TABLES
    finally:
        await _drop(peers.database_url, source)


async def test_refuses_unmigrated_target_and_bad_source(
    peers: DevEnv, tmp_path: Path, secrets_env: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out = await run_cli_async("import-legacy", "--source", "mysql://old/db")
    assert code == 1 and "--source must be sqlite:///PATH or postgresql://" in out
    code, out = await run_cli_async("import-legacy", "--source", f"sqlite:///{tmp_path}/missing.db")
    assert code == 1 and "no SQLite database" in out
    empty = await _database(peers.database_url, "legacy_empty")
    try:
        monkeypatch.setenv("DATABASE_URL", empty)
        source = legacy_data.build_sqlite(tmp_path / "legacy.db")
        code, out = await run_cli_async("import-legacy", "--source", source)
        assert code == 1 and "run `catalytic migrate` first" in out
    finally:
        await _drop(peers.database_url, empty)


async def test_imported_accounts_work_on_the_running_platform(
    tmp_path: Path, platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Into the platform's own database: the argon2 user logs in and the compatible API key
    authenticates through the gateway; the bcrypt user cannot log in. (Ids are derived from the
    legacy ids, so a later session finds the rows imported already and the checks still hold.)"""
    monkeypatch.setenv("DATABASE_URL", platform.env["DATABASE_URL"])
    monkeypatch.setenv("SECRETS_KEY_FILE", platform.env["SECRETS_KEY_FILE"])
    monkeypatch.delenv("SECRETS_KEY", raising=False)
    source = legacy_data.build_sqlite(tmp_path / "legacy.db")
    code, out = await run_cli_async("import-legacy", "--source", source)
    assert code == 0, out
    gateway = platform.url("gateway")
    async with httpx.AsyncClient(base_url=gateway, timeout=10) as client:
        ok = await client.post(
            "/auth/login", json={"email": "owner@acme.example", "password": legacy_data.PASSWORD}
        )
        assert ok.status_code == 200, ok.text
        refused = await client.post(
            "/auth/login", json={"email": "dev@acme.example", "password": legacy_data.PASSWORD}
        )
        assert refused.status_code == 401 and refused.json()["code"] == "invalid_credentials"
        key = f"cc_live_{legacy_data.KEY_PREFIX}_{legacy_data.KEY_SECRET}"
        deadline = time.monotonic() + 30
        # A gateway that just started may not hold identity's signing keys yet (503, retried).
        while (me := await client.get("/me", headers={"X-API-Key": key})).status_code == 503:
            assert time.monotonic() < deadline, me.text
            await asyncio.sleep(0.5)
        assert me.status_code == 200, me.text
        assert me.json()["kind"] == "api_key" and me.json()["tenant"]["name"] == "Acme"
