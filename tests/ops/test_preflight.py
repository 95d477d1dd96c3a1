"""`catalytic preflight` against real peers: a good host passes, each fault fails with its fix."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from shared.devstack import DevEnv
from shared.ids import uuid7
from tests.ops.envs import production_env, run_cli, write_env
from tests.ops.peers import SentryStandIn, fresh_backup, locked_redis, sentry
from tests.ops.smtp_relay import PASSWORD as RELAY_PASSWORD
from tests.ops.smtp_relay import USER as RELAY_USER
from tests.ops.smtp_relay import smtp_relay
from tests.platform import Platform

__all__ = ["locked_redis", "sentry", "smtp_relay"]  # fixtures


@pytest.fixture(scope="module")
def keys_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("keys")


@pytest.fixture
def host(tmp_path: Path) -> dict[str, Path]:
    """A backup timer enabled and a fresh dump, in a temporary tree."""
    systemd = tmp_path / "systemd"
    (systemd / "timers.target.wants").mkdir(parents=True)
    (systemd / "catalytic-backup.timer").write_text("[Timer]\n")
    (systemd / "timers.target.wants" / "catalytic-backup.timer").symlink_to(
        systemd / "catalytic-backup.timer"
    )
    backups = tmp_path / "backups"
    fresh_backup(backups)
    return {"systemd": systemd, "cron": tmp_path / "cron.d", "backups": backups}


def good_env(
    keys_dir: Path, platform: Platform, peers: DevEnv, redis_url: str, **extra: str
) -> dict[str, str]:
    values = {k: v for k, v in platform.env.items() if k.endswith("_DATABASE_URL")}
    values |= {
        "DATABASE_URL": peers.database_url,
        "REDIS_URL": redis_url,
        "SMTP_HOST": peers.smtp_host,
        "SMTP_PORT": str(peers.smtp_port),
        "SMTP_SECURITY": "none",
        "SMTP_USERNAME": "",
        "SMTP_PASSWORD": "",
    }
    return production_env(keys_dir, **(values | extra))


def preflight(env_file: Path, host: dict[str, Path], *more: str) -> tuple[int, str]:
    return run_cli(
        "preflight",
        "--env-file",
        str(env_file),
        "--backup-dir",
        str(host["backups"]),
        "--systemd-dir",
        str(host["systemd"]),
        "--cron-dir",
        str(host["cron"]),
        *more,
    )


def test_good_host_passes_every_check(
    keys_dir: Path,
    tmp_path: Path,
    platform: Platform,
    peers: DevEnv,
    locked_redis: str,
    sentry: SentryStandIn,
    host: dict[str, Path],
) -> None:
    env = good_env(keys_dir, platform, peers, locked_redis, SENTRY_DSN=sentry.dsn)
    env_file = write_env(tmp_path / "catalytic.env", env)
    mails_before = set(peers.mail_dir.glob("*.eml"))
    code, out = preflight(
        env_file,
        host,
        "--health-url",
        platform.url("gateway"),
        "--send-test-mail",
        "ops@example.com",
    )
    print(out)
    assert code == 0, out
    assert "14 checks: none failed" in out
    assert " FAIL " not in out and " SKIP " not in out
    assert len(sentry.received) == 1 and b"catalytic preflight" in sentry.received[0][2]
    new_mail = set(peers.mail_dir.glob("*.eml")) - mails_before
    assert any(b"ops@example.com" in p.read_bytes() for p in new_mail)
    assert "password required" in out and "PostgreSQL 15" in out


def test_sentry_not_configured_is_a_skip(keys_dir: Path, tmp_path: Path, host: dict[str, Path]) -> None:
    env_file = write_env(tmp_path / "catalytic.env", production_env(keys_dir))
    code, out = preflight(env_file, host)
    assert "SKIP    not configured (SENTRY_DSN is empty)" in out
    assert "SKIP    no --health-url given" in out
    assert code == 1  # the template's hosts do not answer


@pytest.fixture
async def empty_database(peers: DevEnv) -> AsyncIterator[str]:
    name = f"pf_{uuid7().hex[-8:]}"
    admin = await asyncpg.connect(peers.database_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield peers.database_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def _wrong_password(url: str) -> str:
    scheme, rest = url.split("://", 1)
    user_pass, host_part = rest.rsplit("@", 1)
    return f"{scheme}://{user_pass.split(':', 1)[0]}:wrong-password@{host_part}"


@pytest.mark.parametrize(
    ("fault", "problem", "fix"),
    [
        ("debug", "DEBUG is on", "DEBUG=false"),
        ("cors", "allows every origin", "list the exact origins"),
        ("stripe", "not a live secret key", "live secret key"),
        ("mode", "catalytic.env is 644", "chmod 600"),
        ("db password", "password authentication failed", "check the host, role and password"),
        ("redis open", "answers without a password", "requirepass"),
        ("pending", "pending: identity: bus/0001", "run `catalytic migrate`"),
        ("stale backup", "h old (limit 26 h)", "run `catalytic backup --dir"),
        ("no timer", "neither", "systemctl enable --now catalytic-backup.timer"),
    ],
)
def test_each_fault_fails_with_its_fix(
    fault: str,
    problem: str,
    fix: str,
    keys_dir: Path,
    tmp_path: Path,
    platform: Platform,
    peers: DevEnv,
    locked_redis: str,
    host: dict[str, Path],
    empty_database: str,
) -> None:
    extra = {
        "debug": {"DEBUG": "true"},
        "cors": {"CORS_ALLOWED_ORIGINS": "*"},
        "stripe": {"STRIPE_API_KEY": "sk_test_51Hx0"},
        "db password": {"DATABASE_URL": _wrong_password(platform.env["IDENTITY_DATABASE_URL"])},
        "redis open": {"REDIS_URL": peers.redis_url},
        "pending": {"DATABASE_URL": empty_database},
    }.get(fault, {})
    env = good_env(keys_dir, platform, peers, locked_redis, **extra)
    env_file = write_env(tmp_path / "catalytic.env", env, 0o644 if fault == "mode" else 0o600)
    if fault == "stale backup":
        fresh_backup(host["backups"], age_hours=30)
    if fault == "no timer":
        (host["systemd"] / "timers.target.wants" / "catalytic-backup.timer").unlink()
        (host["systemd"] / "catalytic-backup.timer").unlink()
    code, out = preflight(env_file, host, "--health-url", platform.url("gateway"))
    assert code == 1, out
    failed = [line for line in out.splitlines() if " FAIL " in line]
    assert any(problem in line for line in failed), out
    assert f"fix: {fix}" in out or fix in out, out


@pytest.mark.parametrize(("password", "passes"), [(RELAY_PASSWORD, True), ("wrong-password", False)])
def test_smtp_login_over_starttls(
    keys_dir: Path,
    tmp_path: Path,
    host: dict[str, Path],
    smtp_relay: tuple[int, Any],
    password: str,
    passes: bool,
) -> None:
    port, relay = smtp_relay
    env = production_env(
        keys_dir,
        SMTP_HOST="127.0.0.1",
        SMTP_PORT=str(port),
        SMTP_SECURITY="starttls",
        SMTP_USERNAME=RELAY_USER,
        SMTP_PASSWORD=password,
        NOTIFIER_SMTP_VALIDATE_CERTS="false",  # the relay's certificate is self-signed
    )
    env_file = write_env(tmp_path / "catalytic.env", env)
    code, out = preflight(env_file, host, "--send-test-mail", "ops@example.com")
    smtp = next(line for line in out.splitlines() if line.startswith("smtp "))
    if passes:
        assert " PASS " in smtp and f"logged in as {RELAY_USER}" in smtp and "test mail sent" in smtp
        assert len(relay.messages) == 1 and b"ops@example.com" in relay.messages[0]
    else:
        assert code == 1
        assert " FAIL " in smtp and "SMTPAuthenticationError" in smtp
        assert "fix: check SMTP_HOST/PORT/SECURITY and the login" in out
        assert relay.messages == []


def test_sentry_refusal_and_dead_health_url_fail(
    keys_dir: Path,
    tmp_path: Path,
    platform: Platform,
    peers: DevEnv,
    locked_redis: str,
    sentry: SentryStandIn,
    host: dict[str, Path],
) -> None:
    wrong_key = sentry.dsn.replace("publickey@", "otherkey@")
    env = good_env(keys_dir, platform, peers, locked_redis, SENTRY_DSN=wrong_key)
    env_file = write_env(tmp_path / "catalytic.env", env)
    code, out = preflight(env_file, host, "--health-url", "http://127.0.0.1:9")
    assert code == 1
    lines = {line.split()[0]: line for line in out.splitlines() if " FAIL " in line}
    assert "answered 403" in lines["sentry"] and "fix: check SENTRY_DSN (key and project id)" in out
    assert "ConnectError" in lines["health"] and "systemctl start catalytic.target" in out
    assert set(lines) == {"sentry", "health"}, out
