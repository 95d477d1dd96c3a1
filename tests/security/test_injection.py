"""Hostile strings in every string field of every JSON body in the gateway's OpenAPI document:
SQL-ish, markup, header/CRLF, NUL, very long, odd Unicode. No answer is a 5xx; what is accepted is
stored inert (read back byte-equal); names that end up in an email are HTML-escaped there.

Each operation with a body needs a valid base body here (a new one without fails the test); the
payload replaces one string field at a time."""

from __future__ import annotations

import re
import time
from collections import Counter
from typing import Any

import httpx
import pytest

from tests.gateway.support import bearer, client, mint, random_ip
from tests.security.conftest import PASSWORD, Account, mailbox, register

PAYLOADS = [
    "' OR '1'='1' --",
    "x'); DROP TABLE users; --",
    '<script>alert("x")</script><img src=x onerror=alert(1)>',
    "{{7*7}} ${7*7} <%= 7*7 %>",
    "line\r\nX-Injected: yes\r\n\r\n<html>",
    "nul\x00byte",
    "\u202eevil\u200b\ufeff 😀",
    "A" * 5000,
    "../../etc/passwd",
]
BASE: dict[str, dict[str, Any]] = {
    "POST /api-keys": {"name": "k", "scopes": ["echo:read"]},
    "POST /auth/accept-invitation": {"token": "t" * 20, "password": PASSWORD},
    "POST /auth/login": {"email": "nobody@example.com", "password": "wrong-but-long-enough"},
    "POST /auth/logout": {},
    "POST /auth/password-reset": {"email": "nobody@example.com"},
    "POST /auth/password-reset/confirm": {"token": "t" * 20, "new_password": PASSWORD},
    "POST /auth/refresh": {"refresh_token": "r" * 20},
    "POST /auth/register": {"email": "inj@example.com", "password": PASSWORD, "company_name": "Inj Co"},
    "POST /auth/verify-email": {"token": "t" * 20},
    "POST /billing/checkout": {"plan": "starter"},
    "POST /me/password": {"current_password": "not-the-password", "new_password": PASSWORD + "x"},
    "PATCH /tenant": {"name": "Inj Co"},
    "POST /users/invitations": {"email": "invitee@example.com"},
    "PATCH /users/{user_id}": {"role": "member"},
    "POST /webhooks/endpoints": {"url": "http://127.0.0.2:9/hook"},
    "PATCH /webhooks/endpoints/{endpoint_id}": {"description": "d"},
    "POST /webhooks/endpoints/{endpoint_id}/secret/rotate": {},
}
Owner = tuple[Account, dict[str, str]]


def _string_fields(doc: dict[str, Any], schema: dict[str, Any]) -> list[str]:
    refs = re.findall(r"#/components/schemas/(\w+)", str(schema))
    fields = []
    for name in refs:
        for prop, spec in doc["components"]["schemas"][name].get("properties", {}).items():
            kinds = {spec.get("type")} | {alt.get("type") for alt in spec.get("oneOf", [])}
            if "string" in kinds and "enum" not in spec and "format" not in spec:
                fields.append(prop)
    return fields


def _operations(gateway: str) -> list[tuple[str, list[str]]]:
    doc = httpx.get(f"{gateway}/openapi.json", timeout=10).json()
    found = []
    for path, item in doc["paths"].items():
        for method, op in item.items():
            body = op.get("requestBody")
            if body is not None:
                schema = body["content"]["application/json"]["schema"]
                found.append((f"{method.upper()} {path}", _string_fields(doc, schema)))
    return found


@pytest.fixture(scope="module")
def owner(gateway: str) -> tuple[Account, dict[str, str]]:
    acc = register(gateway, "inj")
    # A token as identity issues it, on the biggest plan: the fuzzing is not rate-limited away.
    token = mint(tenant=acc.tenant_id, user=acc.user_id, plan="enterprise")
    with client(gateway, ip=acc.ip) as c:
        made = c.post("/webhooks/endpoints", json={"url": "http://127.0.0.2:9/h"}, headers=bearer(token))
    assert made.status_code == 201, made.text
    return acc, {"user_id": acc.user_id, "endpoint_id": made.json()["id"], "token": token}


def test_every_body_has_a_base(gateway: str) -> None:
    missing = [op for op, _ in _operations(gateway) if op not in BASE]
    assert not missing, f"operations with a JSON body but no base body here: {missing}"


def test_hostile_strings_never_cause_a_server_error(
    gateway: str, owner: tuple[Account, dict[str, str]]
) -> None:
    _, ids = owner
    statuses: Counter[int] = Counter()
    tried = 0
    for op, fields in _operations(gateway):
        method, path = op.split(" ", 1)
        for field in fields:
            for payload in PAYLOADS:
                body = {**BASE[op], field: payload}
                if op == "POST /auth/register" and field != "email":
                    body["email"] = f"inj-{random_ip().replace('.', '')}@example.com"
                with client(gateway, ip=random_ip()) as c:
                    resp = c.request(method, path.format(**ids), json=body, headers=bearer(ids["token"]))
                statuses[resp.status_code] += 1
                tried += 1
                assert resp.status_code < 500, (op, field, payload[:40], resp.text)
                if resp.status_code >= 400:
                    assert resp.headers["content-type"].startswith("application/problem+json"), resp.text
    print(f"\n[security] injection: {tried} hostile bodies, statuses {dict(sorted(statuses.items()))}, 0 5xx")


STORED = [p for p in PAYLOADS if "\x00" not in p and "\r" not in p and len(p) <= 100]


def test_accepted_strings_are_stored_byte_equal(gateway: str) -> None:
    acc = register(gateway, "inert")  # its own tenant: the fuzzing above may have used its key quota
    with client(gateway, ip=acc.ip) as c:
        made = c.post("/webhooks/endpoints", json={"url": "http://127.0.0.2:9/h"}, headers=acc.headers())
    assert made.status_code == 201, made.text
    ids = {"endpoint_id": made.json()["id"]}
    h = acc.headers()
    with client(gateway) as c:
        for payload in STORED:
            key = c.post("/api-keys", json={"name": payload, "scopes": []}, headers=h)
            assert key.status_code == 201, key.text
            listed = {k["id"]: k["name"] for k in c.get("/api-keys", headers=h).json()}
            assert listed[key.json()["id"]] == payload
            c.delete(f"/api-keys/{key.json()['id']}", headers=h)
            patched = c.patch(
                f"/webhooks/endpoints/{ids['endpoint_id']}", json={"description": payload}, headers=h
            )
            assert patched.status_code == 200, patched.text
            got = c.get(f"/webhooks/endpoints/{ids['endpoint_id']}", headers=h).json()
            assert got["description"] == payload
            renamed = c.patch("/tenant", json={"name": payload}, headers=h)
            assert renamed.status_code == 200, renamed.text
            assert c.get("/tenant", headers=h).json()["name"] == payload
    print(f"\n[security] injection: {len(STORED)} payloads x 3 fields read back byte-equal")


def test_markup_in_names_is_escaped_in_email(gateway: str) -> None:
    evil = '<script>alert("x")</script>'
    acc = register(gateway, "markup", first_name=evil, company_name="<b>Bold</b> & Co")
    deadline = time.monotonic() + 30
    while len(mails := mailbox().to(acc.email)) < 2:
        assert time.monotonic() < deadline, "no welcome and verification mails"
        time.sleep(0.2)
    for mail in mails:
        html = mail.get_body(("html",))
        assert html is not None
        content = html.get_content()  # type: ignore[attr-defined]
        assert "<script>" not in content and "<b>Bold</b>" not in content
    print(f"\n[security] markup in names: escaped in {len(mails)} HTML mails")
