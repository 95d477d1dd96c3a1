"""`catalytic admin create`: the first owner, who then logs in through the gateway."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from shared.ids import uuid7
from tests.ops.envs import run_cli
from tests.platform import Platform


@pytest.fixture
def identity_env(platform: Platform, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("APP_ENV", "IDENTITY_DATABASE_URL", "REDIS_URL", "SECRETS_KEY_FILE", "JWT_PRIVATE_KEY_FILE"):
        monkeypatch.setenv(name, platform.env[name])


def _password_file(tmp_path: Path, password: str) -> str:
    path = tmp_path / "password"
    path.write_text(password + "\n")
    path.chmod(0o600)
    return str(path)


def test_owner_is_created_and_logs_in(identity_env: None, platform: Platform, tmp_path: Path) -> None:
    email = f"owner-{uuid7().hex[-8:]}@example.com"
    password = "correct horse battery staple 7"
    code, out = run_cli(
        "admin",
        "create",
        "--email",
        email,
        "--tenant",
        "Acme Labs",
        "--password-file",
        _password_file(tmp_path, password),
    )
    assert code == 0, out
    assert "created tenant 'Acme Labs'" in out and email in out
    gateway = platform.url("gateway")
    login = httpx.post(f"{gateway}/auth/login", json={"email": email, "password": password}, timeout=10)
    assert login.status_code == 200, login.text
    headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
    deadline = time.monotonic() + 30
    # A gateway that just started may not hold identity's signing keys yet (503, retried).
    while (me := httpx.get(f"{gateway}/me", headers=headers, timeout=10)).status_code == 503:
        assert time.monotonic() < deadline, me.text
        time.sleep(0.5)
    assert me.status_code == 200, me.text
    body = me.json()
    assert body["role"] == "owner" and body["tenant"]["name"] == "Acme Labs"
    assert body["user"]["email"] == email and body["user"]["email_verified"] is True

    # Again with the same email: refused, nothing changed.
    code, out = run_cli(
        "admin",
        "create",
        "--email",
        email.upper(),
        "--tenant",
        "Other",
        "--password-file",
        _password_file(tmp_path, password),
    )
    assert code == 1
    assert "refused (email_taken)" in out and "nothing was changed" in out


@pytest.mark.parametrize(
    ("password", "code"),
    [("short", "password_too_short"), ("password123", "password_too_common")],
)
def test_weak_password_is_refused(identity_env: None, tmp_path: Path, password: str, code: str) -> None:
    email = f"weak-{uuid7().hex[-8:]}@example.com"
    status, out = run_cli(
        "admin",
        "create",
        "--email",
        email,
        "--tenant",
        "Weak Inc",
        "--password-file",
        _password_file(tmp_path, password),
    )
    assert status == 1
    assert f"refused ({code})" in out
