"""Every service refuses calls that did not come through the gateway, on every route of its own
OpenAPI document: no assertion, garbage, forged with another key, expired, meant for another
service, or replayed by an upstream that received one from the gateway."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from shared.auth.assertion import HEADER, AssertionSigner, Caller
from shared.platform import SERVICES
from tests.gateway.conftest import Stack
from tests.gateway.support import bearer, client
from tests.platform import Platform
from tests.security.conftest import register
from tests.support import as_caller

OPEN = {"/health", "/ready", "/metrics", "/.well-known/jwks.json", "/schema/openapi.json"}
SOME_ID = "01a1ffc7-3964-7169-ba15-148dc9203355"
BACKENDS = [name for name in SERVICES if name != "gateway"]


def _foreign_signed(aud: str) -> str:
    key = ed25519.Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return AssertionSigner(pem).sign(Caller(kind="service", aud=aud, exp=time.time() + 30))


def operations(base: str) -> list[tuple[str, str]]:
    doc: dict[str, Any] = httpx.get(f"{base}/schema/openapi.json", timeout=10).json()
    found = []
    for path, item in doc["paths"].items():
        if path in OPEN:
            continue
        filled = path
        for part in path.split("/"):
            if part.startswith("{"):
                filled = filled.replace(part, SOME_ID)
        found += [
            (method.upper(), filled) for method in item if method in ("get", "post", "put", "patch", "delete")
        ]
    return found


@pytest.fixture(scope="module")
def replayed(gateway: str) -> str:
    """An assertion the gateway really signed, as the product upstream (echo) received it."""
    acc = register(gateway, "replay")
    with client(gateway, ip=acc.ip) as c:
        echo = c.get("/echo", headers=bearer(acc.access))
    assert echo.status_code == 200, echo.text
    return str(echo.json()["headers"][HEADER])


@pytest.mark.parametrize("service", BACKENDS)
def test_every_route_needs_the_gateways_assertion(
    platform: Platform, real: Stack, replayed: str, service: str
) -> None:
    base = platform.url(service)
    ops = operations(base)
    assert ops, f"{service} lists no routes"
    variants = {
        "missing": {},
        "garbage": {HEADER: "garbage.value"},
        "foreign_key": {HEADER: _foreign_signed(service)},
        "expired": as_caller(service, ttl=-5),
        "other_audience": as_caller("echo" if service != "echo" else "identity"),
        "replayed_from_upstream": {HEADER: replayed},
    }
    tried = 0
    with httpx.Client(base_url=base, timeout=10) as c:
        for method, path in ops:
            for name, headers in variants.items():
                resp = c.request(method, path, headers=headers, json={})
                assert resp.status_code == 401, (service, method, path, name, resp.text)
                assert resp.json()["code"] in ("assertion_missing", "assertion_invalid"), resp.text
                tried += 1
    print(f"\n[security] {service}: {len(ops)} routes x {len(variants)} bad assertions = {tried} refused")
