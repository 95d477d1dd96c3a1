"""Tenant isolation, generated from the gateway's merged OpenAPI document.

Every operation in /openapi.json must have a rule here (a new endpoint without one fails the test):
  PUBLIC   no tenant data behind it (sign-in, plan list, JWKS, Stripe's endpoint, the product echo);
  OWN      acts on the caller's own tenant: tenant B's answer must hold none of tenant A's data;
  BY_ID    names a resource in the path: B, using A's real ids, gets 403/404 and no data, and A's
           resource is still there afterwards."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.gateway.support import client, poll
from tests.security.conftest import Account, api_key, register, remember

PUBLIC = {
    "GET /.well-known/jwks.json",
    "POST /auth/accept-invitation",
    "POST /auth/login",
    "POST /auth/logout",
    "POST /auth/password-reset",
    "POST /auth/password-reset/confirm",
    "POST /auth/refresh",
    "POST /auth/register",
    "POST /auth/verify-email",
    "POST /auth/verify-email/resend",
    "GET /billing/plans",
    "POST /webhooks/stripe",
    "GET /webhooks/event-types",
    "GET /echo",
}
# Writes on the caller's own tenant are covered by their suites; here their reads are checked.
OWN_READS = {
    "GET /api-keys",
    "GET /audit-logs",
    "GET /audit-logs/export",
    "GET /billing/invoices",
    "GET /billing/subscription",
    "GET /me",
    "GET /me/sessions",
    "GET /tenant",
    "GET /usage",
    "GET /usage/summary",
    "GET /users",
    "GET /users/invitations",
    "GET /webhooks/endpoints",
}
OWN_WRITES = {
    "POST /api-keys",
    "POST /billing/checkout",
    "POST /billing/portal",
    "POST /billing/subscription/cancel",
    "POST /me/password",
    "PATCH /tenant",
    "POST /users/invitations",
    "POST /webhooks/endpoints",
}
BY_ID: dict[str, Any] = {  # operation -> a valid body, so a refusal is about ownership, not input
    "DELETE /api-keys/{key_id}": None,
    "DELETE /me/sessions/{session_id}": None,
    "DELETE /users/invitations/{invitation_id}": None,
    "GET /users/{user_id}": None,
    "DELETE /users/{user_id}": None,
    "PATCH /users/{user_id}": {"role": "member"},
    "GET /webhooks/endpoints/{endpoint_id}": None,
    "DELETE /webhooks/endpoints/{endpoint_id}": None,
    "PATCH /webhooks/endpoints/{endpoint_id}": {"description": "taken over"},
    "GET /webhooks/endpoints/{endpoint_id}/deliveries": None,
    "GET /webhooks/endpoints/{endpoint_id}/deliveries/{delivery_id}": None,
    "POST /webhooks/endpoints/{endpoint_id}/deliveries/{delivery_id}/retry": None,
    "POST /webhooks/endpoints/{endpoint_id}/secret/rotate": {},
}
METHODS = ("get", "post", "put", "patch", "delete")


@dataclass
class Victim:
    account: Account
    ids: dict[str, str]  # path parameter -> A's real id
    markers: list[str]  # strings only A's data contains


def _spec(gateway: str) -> list[str]:
    doc = httpx.get(f"{gateway}/openapi.json", timeout=10).json()
    return [f"{m.upper()} {path}" for path, item in doc["paths"].items() for m in item if m in METHODS]


@pytest.fixture(scope="module")
def victim(gateway: str) -> Victim:
    a = register(gateway, "victim")
    h = a.headers()
    with client(gateway, ip=a.ip) as c:
        endpoint = c.post(
            "/webhooks/endpoints",
            json={"url": "http://127.0.0.2:9/hook", "event_types": ["identity.*"]},
            headers=h,
        )
        assert endpoint.status_code == 201, endpoint.text
        remember(endpoint.json()["secret"])
        key = api_key(gateway, a, scopes=["echo:read"])  # also makes a delivery to the endpoint
        invited = c.post("/users/invitations", json={"email": f"inv-{a.email}"}, headers=h)
        assert invited.status_code == 201, invited.text
        session = c.get("/me/sessions", headers=h).json()[0]["id"]
        endpoint_id = endpoint.json()["id"]
        deliveries = poll(
            lambda: c.get(f"/webhooks/endpoints/{endpoint_id}/deliveries", headers=h).json(),
            until=bool,
            timeout=30,
        )
    ids = {
        "key_id": key["id"],
        "session_id": session,
        "invitation_id": invited.json()["id"],
        "user_id": a.user_id,
        "endpoint_id": endpoint_id,
        "delivery_id": deliveries[0]["id"],
    }
    markers = [a.tenant_id, a.email, key["id"], endpoint_id, invited.json()["id"], key["prefix"]]
    return Victim(a, ids, markers)


def test_every_operation_has_a_rule(gateway: str) -> None:
    ops = _spec(gateway)
    ruled = PUBLIC | OWN_READS | OWN_WRITES | set(BY_ID)
    missing = [op for op in ops if op not in ruled]
    assert not missing, f"operations without a tenant-isolation rule: {missing}"
    stale = sorted(ruled - set(ops))
    assert not stale, f"rules for operations the spec no longer has: {stale}"


def _leaks(resp: httpx.Response, victim: Victim, allowed: str = "") -> list[str]:
    text = resp.text.replace(allowed, "") if allowed else resp.text
    return [m for m in victim.markers if m and m in text]


def test_second_tenant_gets_nothing(gateway: str, victim: Victim) -> None:
    b = register(gateway, "attacker")
    ops = _spec(gateway)
    tried = 0
    with client(gateway, ip=b.ip) as c:
        for op in ops:
            method, path = op.split(" ", 1)
            if op in OWN_READS:
                resp = c.request(method, path, headers=b.headers())
                assert resp.status_code == 200, (op, resp.text)
                assert not _leaks(resp, victim), (op, _leaks(resp, victim))
                tried += 1
            elif op in BY_ID:
                filled = path.format(**victim.ids)
                body = BY_ID[op]
                kw: dict[str, Any] = {"json": body} if body is not None else {}
                resp = c.request(method, filled, headers=b.headers(), **kw)
                assert resp.status_code in (403, 404), (op, resp.status_code, resp.text)
                assert not _leaks(resp, victim, allowed=filled), (op, resp.text)
                tried += 1
    print(f"\n[security] BOLA: {tried} operations of {len(ops)} tried with a second tenant, none leaked")
    # A's resources all survived B's attempts.
    a = victim.account
    with client(gateway, ip=a.ip) as c:
        h = a.headers()
        assert c.get(f"/users/{a.user_id}", headers=h).status_code == 200
        assert c.get(f"/webhooks/endpoints/{victim.ids['endpoint_id']}", headers=h).status_code == 200
        keys = json.dumps(c.get("/api-keys", headers=h).json())
        assert victim.ids["key_id"] in keys
        invitations = json.dumps(c.get("/users/invitations", headers=h).json())
        assert victim.ids["invitation_id"] in invitations
        assert c.get("/me", headers=h).status_code == 200  # the session B tried to end is alive
