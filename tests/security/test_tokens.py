"""Every kind of bad or dead access token is refused by the real gateways with 401 problem+json.

Forged tokens are made here (alg confusion, wrong key, bad claims); dead ones are made by the real
identity service (logout, refresh reuse, password reset, member removed). The gateway-only variants
live in tests/gateway/test_auth.py against a stub; this file covers them end to end in one table."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable

import pytest

from tests.gateway.conftest import Stack
from tests.gateway.support import (
    bearer,
    claims,
    client,
    hs256_with_public_key,
    other_rsa_key,
    random_ip,
    sign_rs256,
    unsigned,
)
from tests.security.conftest import PASSWORD, Account, login, register, remember, token_in_mail

NOW = int(time.time())


def _tampered(account: Account) -> str:
    head, body, sig = account.access.split(".")
    payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    payload["role"], payload["plan"] = "owner", "enterprise"
    payload["tenant_id"] = "01a1ffc7-3964-7169-ba15-148dc9203355"
    forged = base64.urlsafe_b64encode(json.dumps(payload).encode()).rstrip(b"=").decode()
    return f"{head}.{forged}.{sig}"


FORGED: dict[str, tuple[Callable[[Account], str], str]] = {
    "alg_none": (lambda a: unsigned(claims(sub=a.user_id, tenant_id=a.tenant_id)), "token_invalid"),
    "hs256_with_rsa_public_key": (
        lambda a: hs256_with_public_key(claims(sub=a.user_id, tenant_id=a.tenant_id)),
        "token_invalid",
    ),
    "wrong_key_same_kid": (
        lambda a: sign_rs256(claims(sub=a.user_id, tenant_id=a.tenant_id), key=other_rsa_key()),
        "token_invalid",
    ),
    "unknown_kid": (
        lambda a: sign_rs256(claims(sub=a.user_id, tenant_id=a.tenant_id), key=other_rsa_key(), kid="k-x"),
        "token_invalid",
    ),
    "expired": (
        lambda a: sign_rs256(claims(sub=a.user_id, tenant_id=a.tenant_id, iat=NOW - 7200, exp=NOW - 3600)),
        "token_expired",
    ),
    "not_yet_valid": (
        lambda a: sign_rs256(claims(sub=a.user_id, tenant_id=a.tenant_id, nbf=NOW + 3600, iat=NOW + 3600)),
        "token_invalid",
    ),
    "wrong_issuer": (
        lambda a: sign_rs256(claims(sub=a.user_id, tenant_id=a.tenant_id, iss="https://evil.example")),
        "token_invalid",
    ),
    "wrong_audience": (
        lambda a: sign_rs256(claims(sub=a.user_id, tenant_id=a.tenant_id, aud="someone-else")),
        "token_invalid",
    ),
    "tampered_payload": (_tampered, "token_invalid"),
}


def _refused(real: Stack, token: str, code: str) -> None:
    for base in real.gateways:
        with client(base, ip=random_ip()) as c:
            for path in ("/me", "/echo"):
                resp = c.get(path, headers=bearer(token))
                assert resp.status_code == 401, (path, resp.text)
                assert resp.headers["content-type"].startswith("application/problem+json")
                assert resp.json()["code"] == code, resp.text


@pytest.fixture(scope="module")
def victim(gateway: str) -> Account:
    return register(gateway, "jwt")


@pytest.mark.parametrize("case", list(FORGED))
def test_forged_tokens_are_refused(real: Stack, victim: Account, case: str) -> None:
    make, code = FORGED[case]
    _refused(real, make(victim), code)
    print(f"\n[security] jwt {case}: refused with {code} by {len(real.gateways)} gateways")


def test_token_after_logout(real: Stack, gateway: str) -> None:
    acc = register(gateway, "logout")
    with client(gateway, ip=acc.ip) as c:
        assert c.get("/me", headers=acc.headers()).status_code == 200
        assert c.post("/auth/logout", headers=acc.headers()).status_code == 204
    _refused(real, acc.access, "token_revoked")


def test_refresh_token_reuse_revokes_the_family(gateway: str) -> None:
    acc = register(gateway, "refresh")
    with client(gateway, ip=acc.ip) as c:
        first = c.post("/auth/refresh", json={"refresh_token": acc.refresh})
        assert first.status_code == 200, first.text
        rotated = first.json()["refresh_token"]
        remember(rotated, first.json()["access_token"])
        reused = c.post("/auth/refresh", json={"refresh_token": acc.refresh})
        assert reused.status_code == 401 and reused.json()["code"] == "refresh_token_reused", reused.text
        # The thief's replay burned the whole family: the rotated token is dead too.
        after = c.post("/auth/refresh", json={"refresh_token": rotated})
        assert after.status_code == 401, after.text


def test_tokens_die_with_a_password_reset(real: Stack, gateway: str) -> None:
    acc = register(gateway, "reset")
    time.sleep(1.1)  # revocation is by issue second: the old token must be from an earlier second
    with client(gateway, ip=acc.ip) as c:
        assert c.post("/auth/password-reset", json={"email": acc.email}).status_code == 202
        token = token_in_mail(acc.email, "/reset-password")
        new_password = PASSWORD + "-new"
        remember(new_password)
        done = c.post("/auth/password-reset/confirm", json={"token": token, "new_password": new_password})
        assert done.status_code == 204, done.text
        assert c.post("/auth/refresh", json={"refresh_token": acc.refresh}).status_code == 401
        # The link works once.
        again = c.post("/auth/password-reset/confirm", json={"token": token, "new_password": PASSWORD})
        assert again.status_code in (400, 401, 422) and again.json()["code"] == "reset_token_invalid"
    _refused(real, acc.access, "token_revoked")
    assert login(gateway, acc.email, PASSWORD).status_code == 401
    assert login(gateway, acc.email, new_password).status_code == 200


def test_removed_member_loses_access(real: Stack, gateway: str) -> None:
    owner = register(gateway, "team")
    email = f"member-{random_ip().replace('.', '-')}@example.com"
    with client(gateway, ip=owner.ip) as c:
        invited = c.post(
            "/users/invitations", json={"email": email, "role": "admin"}, headers=owner.headers()
        )
        assert invited.status_code == 201, invited.text
        token = token_in_mail(email, "/accept-invitation")
        joined = c.post("/auth/accept-invitation", json={"token": token, "password": PASSWORD})
        assert joined.status_code == 201, joined.text
        member = joined.json()
        remember(member["access_token"], member["refresh_token"])
        assert c.get("/users", headers=bearer(member["access_token"])).status_code == 200
        time.sleep(1.1)
        gone = c.delete(f"/users/{member['user_id']}", headers=owner.headers())
        assert gone.status_code == 204, gone.text
        assert c.post("/auth/refresh", json={"refresh_token": member["refresh_token"]}).status_code == 401
    _refused(real, member["access_token"], "token_revoked")
    assert login(gateway, email, PASSWORD).status_code == 401


def test_garbage_bearer_values(gateway: str) -> None:
    # From an address of its own: earlier tests may have spent the loopback's anonymous budget.
    with client(gateway) as c:
        for value in ("Bearer", "Bearer a.b", "Bearer " + "A" * 9000, "Basic dXNlcjpwYXNz"):
            resp = c.get("/me", headers={"Authorization": value})
            assert resp.status_code in (401, 431), (value[:20], resp.text)
