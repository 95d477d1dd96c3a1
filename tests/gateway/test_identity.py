"""The gateway with the real identity service: JWKS, key verification, logout and key revocation.

Everything here goes through the gateway the way a tenant developer would call the platform.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests.gateway.conftest import Stack
from tests.gateway.support import bearer, client, forged_assertion, poll, problem, random_ip

PASSWORD = "Velvet-Orbit-Lantern-42"


def _register(c: httpx.Client) -> dict[str, Any]:
    email = f"gw-{uuid.uuid4().hex[:12]}@example.com"
    resp = c.post("/auth/register", json={"email": email, "password": PASSWORD, "company_name": "Gateway Co"})
    assert resp.status_code == 201, resp.text
    body: dict[str, Any] = resp.json()
    body["email"] = email
    return body


def test_register_me_and_logout_through_the_gateway(real: Stack) -> None:
    with client(real.gateway, ip=random_ip()) as c:
        account = _register(c)
        token = account["access_token"]
        me = c.get("/me", headers=bearer(token))
        assert me.status_code == 200, me.text
        assert me.json()["kind"] == "user"
        assert me.json()["tenant"]["id"] == account["tenant_id"]
        # The product upstream sees the same user, signed by the gateway.
        echo = c.get("/echo", headers=bearer(token)).json()
        assert echo["caller"]["user_id"] == account["user_id"]
        assert echo["caller"]["tenant_id"] == account["tenant_id"]
        out = c.post("/auth/logout", headers=bearer(token))
        assert out.status_code == 204, out.text
    for base in real.gateways:  # identity wrote revoked:jti; every gateway refuses the token now
        with client(base) as other:
            resp = other.get("/me", headers=bearer(token))
            assert resp.status_code == 401
            assert problem(resp)["code"] == "token_revoked"


def test_api_key_verified_by_identity_and_revoked_everywhere(real: Stack) -> None:
    with client(real.gateway, ip=random_ip()) as c:
        account = _register(c)
        token = account["access_token"]
        created = c.post("/api-keys", json={"name": "ci", "scopes": ["echo:read"]}, headers=bearer(token))
        assert created.status_code == 201, created.text
        key, key_id = created.json()["key"], created.json()["id"]
    for base in real.gateways:
        with client(base) as other:
            for headers in (bearer(key), {"X-API-Key": key}):
                resp = other.get("/echo", headers=headers)
                assert resp.status_code == 200, resp.text
                caller = resp.json()["caller"]
                assert caller["kind"] == "api_key"
                assert caller["api_key_id"] == key_id
                assert caller["scopes"] == ["echo:read"]
            me = other.get("/me", headers=bearer(key))
            assert me.status_code == 200, me.text
            assert me.json()["kind"] == "api_key"
    with client(real.gateway) as c:
        revoked = c.delete(f"/api-keys/{key_id}", headers=bearer(token))
        assert revoked.status_code == 204, revoked.text
    # identity's outbox publishes identity.api_key.revoked; each gateway drops its cached answer.
    for base in real.gateways:
        with client(base) as other:
            resp = poll(
                lambda other=other: other.get("/echo", headers=bearer(key)),
                until=lambda r: r.status_code == 401,
                timeout=10,
                interval=0.01,
            )
            assert resp.status_code == 401
            assert problem(resp)["code"] == "api_key_invalid"


def test_key_without_the_upstream_scope_is_refused(real: Stack) -> None:
    with client(real.gateway, ip=random_ip()) as c:
        token = _register(c)["access_token"]
        key = c.post("/api-keys", json={"name": "narrow", "scopes": ["usage:read"]}, headers=bearer(token))
        assert key.status_code == 201, key.text
        resp = c.get("/echo", headers=bearer(key.json()["key"]))
    assert resp.status_code == 403
    assert problem(resp)["code"] == "insufficient_scope"


def test_internal_routes_are_not_reachable_through_the_gateway(real: Stack) -> None:
    with client(real.gateway) as c:
        resp = c.post("/internal/api-keys/verify", json={"prefix": "a" * 12, "secret_hash": "0" * 64})
    assert resp.status_code == 404
    assert problem(resp)["code"] == "route_not_found"


def test_forged_assertion_sent_straight_to_identity_is_refused(real: Stack) -> None:
    identity = real.env["IDENTITY_URL"]
    resp = httpx.get(f"{identity}/me", headers={"x-catalytic-assertion": forged_assertion("identity")})
    assert resp.status_code == 401
    assert problem(resp)["code"] == "assertion_invalid"
    missing = httpx.get(f"{identity}/me")
    assert missing.status_code == 401
    assert problem(missing)["code"] == "assertion_missing"


def test_merged_openapi_has_the_real_services(real: Stack) -> None:
    with client(real.gateway) as c:
        doc = poll(lambda: c.get("/openapi.json").json(), until=lambda d: "/auth/register" in d["paths"])
    assert "/auth/register" in doc["paths"]
    assert "/me" in doc["paths"]
    assert not any(path.startswith("/internal") for path in doc["paths"])
