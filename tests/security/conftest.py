"""The security suite attacks the platform as a client would: through two real gateways in front of
the real services (`real` from tests/gateway), or straight at a service where the gateway is skipped.

Every secret a test creates is recorded in SECRETS; test_secrets_not_logged.py (run last) greps the
logs of the whole session for each of them."""

from __future__ import annotations

import re
import time
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.conftest import TEST_ROOT
from tests.gateway.conftest import Stack, gw, real  # noqa: F401 - fixtures of this suite too
from tests.gateway.support import bearer, client, random_ip
from tests.notifier.helpers import Mailbox

PASSWORD = "Velvet-Orbit-Lantern-42"
SECRETS: set[str] = set()
LOG_TEST = "test_secrets_not_logged.py"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # The log check reads what every other test made the platform write, so it runs last.
    items.sort(key=lambda item: item.path.name == LOG_TEST)


def remember(*secrets: str) -> None:
    SECRETS.update(s for s in secrets if s)


@dataclass
class Account:
    tenant_id: str
    user_id: str
    email: str
    password: str
    access: str
    refresh: str
    ip: str

    def headers(self) -> dict[str, str]:
        return bearer(self.access)


def register(base: str, label: str = "sec", **extra: Any) -> Account:
    email = f"{label}-{uuid.uuid4().hex[:12]}@example.com"
    ip = random_ip()
    with client(base, ip=ip) as c:
        body = {"email": email, "password": PASSWORD, "company_name": f"{label} Co", **extra}
        resp = c.post("/auth/register", json=body)
    assert resp.status_code == 201, resp.text
    got = resp.json()
    remember(got["access_token"], got["refresh_token"])
    return Account(
        got["tenant_id"], got["user_id"], email, PASSWORD, got["access_token"], got["refresh_token"], ip
    )


def login(base: str, email: str, password: str, ip: str | None = None) -> httpx.Response:
    with client(base, ip=ip or random_ip()) as c:
        resp = c.post("/auth/login", json={"email": email, "password": password})
    if resp.status_code == 200:
        remember(resp.json()["access_token"], resp.json()["refresh_token"])
    return resp


def api_key(base: str, owner: Account, **body: Any) -> dict[str, Any]:
    with client(base, ip=owner.ip) as c:
        resp = c.post("/api-keys", json={"name": "sec", **body}, headers=owner.headers())
    assert resp.status_code == 201, resp.text
    created: dict[str, Any] = resp.json()
    remember(created["key"])
    return created


def mailbox() -> Mailbox:
    return Mailbox(TEST_ROOT / "mail", TEST_ROOT / "smtp-control.json")


def token_in_mail(address: str, page: str, timeout: float = 30.0) -> str:
    """The token of the newest `page` link (/reset-password, /accept-invitation) mailed to `address`."""
    deadline = time.monotonic() + timeout
    pattern = re.compile(re.escape(page) + r"\?token=([A-Za-z0-9_-]{16,200})")
    while True:
        found: list[str] = []
        for mail in mailbox().to(address):
            text = mail.get_body(("plain",))
            if text is not None:
                found += pattern.findall(text.get_content())  # type: ignore[attr-defined]
        if found:
            remember(found[-1])
            return found[-1]
        assert time.monotonic() < deadline, f"no {page} link mailed to {address}"
        time.sleep(0.1)


@pytest.fixture(scope="session")
def gateway(real: Stack) -> str:  # noqa: F811
    return real.gateway
