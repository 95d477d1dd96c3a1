"""Every route except health and the JWKS needs a valid gateway assertion."""

from __future__ import annotations

import time

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from shared.auth.assertion import HEADER, AssertionSigner, Caller
from tests.identity.conftest import Identity
from tests.support import as_caller

ROUTES = [
    ("POST", "/auth/register"),
    ("POST", "/auth/login"),
    ("POST", "/auth/refresh"),
    ("POST", "/auth/logout"),
    ("POST", "/auth/password-reset"),
    ("POST", "/auth/password-reset/confirm"),
    ("POST", "/auth/verify-email"),
    ("POST", "/auth/verify-email/resend"),
    ("POST", "/auth/accept-invitation"),
    ("GET", "/me"),
    ("POST", "/me/password"),
    ("GET", "/me/sessions"),
    ("DELETE", "/me/sessions/01a1ffc7-3964-7169-ba15-148dc9203355"),
    ("GET", "/tenant"),
    ("PATCH", "/tenant"),
    ("GET", "/users"),
    ("GET", "/users/01a1ffc7-3964-7169-ba15-148dc9203355"),
    ("PATCH", "/users/01a1ffc7-3964-7169-ba15-148dc9203355"),
    ("DELETE", "/users/01a1ffc7-3964-7169-ba15-148dc9203355"),
    ("POST", "/users/invitations"),
    ("GET", "/users/invitations"),
    ("DELETE", "/users/invitations/01a1ffc7-3964-7169-ba15-148dc9203355"),
    ("POST", "/api-keys"),
    ("GET", "/api-keys"),
    ("DELETE", "/api-keys/01a1ffc7-3964-7169-ba15-148dc9203355"),
    ("POST", "/internal/api-keys/verify"),
]


def _forged() -> dict[str, str]:
    key = ed25519.Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    caller = Caller(kind="service", aud="identity", exp=time.time() + 30)
    return {HEADER: AssertionSigner(pem).sign(caller)}


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_missing_forged_expired_or_misdirected_assertion_is_401(
    identity: Identity, method: str, path: str
) -> None:
    variants = {
        "assertion_missing": {},
        "assertion_invalid": _forged(),
        "assertion_invalid ": as_caller("identity", ttl=-5),
        "assertion_invalid  ": as_caller("billing"),
        "assertion_invalid   ": {HEADER: "garbage.value"},
    }
    for code, headers in variants.items():
        resp = identity.call(method, path, headers, json={})
        assert resp.status_code == 401, (code, resp.text)
        assert resp.json()["code"] == code.strip()


def test_health_and_jwks_need_no_assertion(identity: Identity) -> None:
    assert httpx.get(f"{identity.base}/health").status_code == 200
    assert httpx.get(f"{identity.base}/.well-known/jwks.json").json()["keys"]


def test_refused_requests_do_not_leak_database_connections(identity: Identity) -> None:
    """A refused caller must not leave a transaction open (the pool would run dry)."""
    anon = as_caller("identity", kind="anonymous", role=None, plan=None)
    for _ in range(25):
        for method, path in (("GET", "/users"), ("POST", "/users/invitations"), ("POST", "/auth/logout")):
            assert identity.call(method, path, anon, json={"email": "x@example.com"}).status_code in (
                401,
                422,
            )
    stuck = identity.sql(
        "SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = 'identity'"
        " AND state = 'idle in transaction'"
    )
    assert stuck[0]["n"] == 0
    acct = identity.register()
    assert identity.get("/users", acct.headers).status_code == 200
