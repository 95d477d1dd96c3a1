"""Edge behaviour: CORS, security headers, body limits, upstream failures, streaming, OpenAPI."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import REPO
from tests.gateway.conftest import MAX_BODY, SLOW_TIMEOUT_S, Stack
from tests.gateway.support import bearer, client, mint, problem

ALLOWED = "https://app.example.com"


def test_cors_preflight_allowed(gw: Stack) -> None:
    with client(gw.gateway) as c:
        resp = c.options(
            "/echo",
            headers={
                "Origin": ALLOWED,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization, content-type",
            },
        )
    assert resp.status_code == 204
    assert resp.headers["access-control-allow-origin"] == ALLOWED
    assert "POST" in resp.headers["access-control-allow-methods"]
    assert resp.headers["access-control-allow-headers"] == "authorization, content-type"
    assert int(resp.headers["access-control-max-age"]) > 0
    assert resp.headers["vary"] == "Origin"


def test_cors_preflight_denied(gw: Stack) -> None:
    with client(gw.gateway) as c:
        resp = c.options(
            "/echo", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"}
        )
    assert resp.status_code == 403
    assert problem(resp)["code"] == "cors_origin_denied"
    assert "access-control-allow-origin" not in resp.headers


def test_cors_on_actual_requests(gw: Stack) -> None:
    with client(gw.gateway) as c:
        allowed = c.get("/echo", headers={**bearer(mint()), "Origin": ALLOWED})
        other = c.get("/echo", headers={**bearer(mint()), "Origin": "https://evil.example"})
    assert allowed.headers["access-control-allow-origin"] == ALLOWED
    assert "ratelimit-remaining" in allowed.headers["access-control-expose-headers"]
    assert "access-control-allow-origin" not in other.headers


def test_wildcard_cors_is_refused_in_production(gw: Stack) -> None:
    env = {**os.environ, **gw.env, "APP_ENV": "production", "CORS_ALLOWED_ORIGINS": "*"}
    done = subprocess.run(
        [sys.executable, "-m", "shared.cli", "serve", "gateway", "--port", "1"],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0
    assert "CORS_ALLOWED_ORIGINS must not contain '*'" in done.stderr


def test_security_headers_and_hsts_only_behind_tls(gw: Stack) -> None:
    with client(gw.gateway) as c:
        plain = c.get("/echo", headers=bearer(mint()))
        tls = c.get("/echo", headers={**bearer(mint()), "X-Forwarded-Proto": "https"})
        health = c.get("/health")
    for resp in (plain, tls, health):
        assert resp.headers["x-content-type-options"] == "nosniff"
        assert resp.headers["x-frame-options"] == "DENY"
        assert resp.headers["referrer-policy"] == "no-referrer"
    assert "strict-transport-security" not in plain.headers
    assert tls.headers["strict-transport-security"].startswith("max-age=")
    assert tls.json()["headers"]["x-forwarded-proto"] == "https"
    # X-Forwarded-* from an address that is not a trusted proxy are ignored.
    transport = httpx.HTTPTransport(local_address="127.0.0.2")
    with httpx.Client(base_url=gw.gateway, transport=transport) as untrusted:
        spoofed = untrusted.get(
            "/echo",
            headers={**bearer(mint()), "X-Forwarded-Proto": "https", "X-Forwarded-For": "1.2.3.4"},
        )
    assert spoofed.status_code == 200, spoofed.text
    assert "strict-transport-security" not in spoofed.headers
    assert spoofed.json()["caller"]["ip"] == "127.0.0.2"
    assert spoofed.json()["headers"]["x-forwarded-for"] == "127.0.0.2"


def test_body_limit_by_length_and_while_streaming(gw: Stack) -> None:
    big = b"x" * (MAX_BODY + 1)
    with client(gw.gateway) as c:
        declared = c.post("/upload", content=big, headers=bearer(mint()))

        def chunks() -> Iterator[bytes]:
            for i in range(0, len(big), 65_536):
                yield big[i : i + 65_536]

        streamed = c.post("/upload", content=chunks(), headers=bearer(mint()))
    assert declared.status_code == 413
    assert problem(declared)["code"] == "payload_too_large"
    assert streamed.status_code == 413
    assert problem(streamed)["code"] == "payload_too_large"


def test_request_and_response_bodies_stream_through(gw: Stack) -> None:
    size = MAX_BODY - 1000
    payload = os.urandom(size)
    with client(gw.gateway) as c:

        def chunks() -> Iterator[bytes]:
            for i in range(0, size, 50_000):
                yield payload[i : i + 50_000]

        up = c.post("/upload", content=chunks(), headers=bearer(mint()))
        assert up.status_code == 200, up.text
        assert up.json()["received"] == size
        total = 0
        with c.stream("GET", "/stream?size=8000000", headers=bearer(mint())) as down:
            assert down.status_code == 200
            for part in down.iter_bytes():
                total += len(part)
    assert total == 8_000_000


def test_upstream_down_is_502_problem(gw: Stack) -> None:
    with client(gw.gateway) as c:
        resp = c.get("/down/anything", headers=bearer(mint()))
    assert resp.status_code == 502
    body = problem(resp)
    assert body["code"] == "upstream_unavailable"
    assert "Traceback" not in resp.text
    assert body["request_id"] == resp.headers["x-request-id"]


def test_upstream_timeout_is_504_problem(gw: Stack) -> None:
    with client(gw.gateway) as c:
        resp = c.get(f"/slow?seconds={SLOW_TIMEOUT_S * 3}", headers=bearer(mint()))
        fast = c.get(f"/slow?seconds={SLOW_TIMEOUT_S / 10}", headers=bearer(mint()))
    assert resp.status_code == 504
    assert problem(resp)["code"] == "upstream_timeout"
    assert fast.status_code == 200


def test_request_ids(gw: Stack) -> None:
    with client(gw.gateway) as c:
        given = c.get("/echo", headers={**bearer(mint()), "X-Request-ID": "client-trace-12345"})
        made = c.get("/echo", headers={**bearer(mint()), "X-Request-ID": "bad id; drop"})
    assert given.headers["x-request-id"] == "client-trace-12345"
    assert given.json()["headers"]["x-request-id"] == "client-trace-12345"
    assert len(made.headers["x-request-id"]) == 32
    assert made.json()["caller"]["request_id"] == made.headers["x-request-id"]


def test_merged_openapi_and_docs(gw: Stack) -> None:
    from tests.gateway.support import poll

    with client(gw.gateway) as c:
        doc = poll(lambda: c.get("/openapi.json").json(), until=lambda d: "/echo" in d["paths"])
        docs = c.get("/docs")
    assert doc["openapi"].startswith("3.")
    assert "/echo" in doc["paths"]
    assert "/internal/secret" not in doc["paths"]  # only what the gateway routes is published
    assert "Echo" in doc["components"]["schemas"]
    assert "bearer" in doc["components"]["securitySchemes"]
    assert docs.status_code == 200
    assert "/openapi.json" in docs.text
    assert docs.headers["content-type"].startswith("text/html")


@pytest.mark.parametrize("method", ["GET", "POST", "DELETE"])
def test_methods_and_bodies_pass_through(gw: Stack, method: str) -> None:
    with client(gw.gateway) as c:
        resp = c.request(method, "/echo/item/7", content=b'{"a": 1}', headers=bearer(mint()))
    assert resp.status_code == 200
    echo = resp.json()
    assert echo["method"] == method
    assert echo["body_bytes"] == 8
