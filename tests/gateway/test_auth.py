"""Authentication at the gateway: every failure mode refused, and what upstreams are told."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest
import redis
from cryptography.hazmat.primitives import serialization

from shared.auth.tokens import TokenSigner
from tests.gateway.conftest import Stack
from tests.gateway.peer import STUB_JWKS_EXTRA, STUB_JWKS_FETCHES, STUB_VERIFY_CALLS
from tests.gateway.support import (
    async_client,
    bearer,
    claims,
    client,
    forged_assertion,
    hs256_with_public_key,
    mint,
    new_id,
    number,
    other_rsa_key,
    poll,
    problem,
    raw_request,
    sign_rs256,
    signer,
    stub_api_key,
    stub_revoke,
    unsigned,
)


def _get(gw: Stack, headers: dict[str, str], path: str = "/echo") -> httpx.Response:
    with client(gw.gateway) as c:
        return c.get(path, headers=headers)


def test_missing_credentials_get_401_problem(gw: Stack) -> None:
    resp = _get(gw, {})
    assert resp.status_code == 401
    assert problem(resp)["code"] == "unauthorized"
    assert resp.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    "authorization",
    [
        "Basic dXNlcjpwYXNz",
        "Bearer",
        "Bearer not-a-jwt",
        "Bearer a.b.c",
        "Token abc.def.ghi",
    ],
)
def test_malformed_authorization_is_token_invalid(gw: Stack, authorization: str) -> None:
    resp = _get(gw, {"Authorization": authorization})
    assert resp.status_code == 401
    assert problem(resp)["code"] == "token_invalid"


def test_expired_token(gw: Stack) -> None:
    past = int(time.time()) - 3600
    token = sign_rs256(claims(iat=past - 900, nbf=past - 900, exp=past))
    resp = _get(gw, bearer(token))
    assert resp.status_code == 401
    assert problem(resp)["code"] == "token_expired"


def test_wrong_signature(gw: Stack) -> None:
    token = sign_rs256(claims(), key=other_rsa_key())  # right kid, wrong key
    resp = _get(gw, bearer(token))
    assert resp.status_code == 401
    assert problem(resp)["code"] == "token_invalid"


def test_alg_none_is_refused(gw: Stack) -> None:
    resp = _get(gw, bearer(unsigned(claims())))
    assert resp.status_code == 401
    assert problem(resp)["code"] == "token_invalid"


def test_hs256_signed_with_the_public_key_is_refused(gw: Stack) -> None:
    resp = _get(gw, bearer(hs256_with_public_key(claims())))
    assert resp.status_code == 401
    assert problem(resp)["code"] == "token_invalid"


@pytest.mark.parametrize(("field", "value"), [("aud", "someone-else"), ("iss", "https://evil.example")])
def test_wrong_audience_or_issuer(gw: Stack, field: str, value: str) -> None:
    resp = _get(gw, bearer(sign_rs256(claims(**{field: value}))))
    assert resp.status_code == 401
    assert problem(resp)["code"] == "token_invalid"


def test_token_without_tenant_or_subject_id_is_refused(gw: Stack) -> None:
    resp = _get(gw, bearer(sign_rs256(claims(sub="not-a-uuid"))))
    assert resp.status_code == 401
    assert problem(resp)["code"] == "token_invalid"


def test_valid_token_reaches_upstream_with_a_signed_assertion(gw: Stack) -> None:
    tenant, user = new_id(), new_id()
    token = mint(tenant=tenant, user=user, plan="starter", role="admin")
    with client(gw.gateway, ip="10.9.8.7") as c:
        resp = c.get("/echo/things?q=1", headers={**bearer(token), "X-Request-ID": "trace-gw-000001"})
    assert resp.status_code == 200, resp.text
    echo = resp.json()
    caller = echo["caller"]
    assert caller["kind"] == "user"
    assert caller["aud"] == "echo"
    assert caller["tenant_id"] == tenant
    assert caller["user_id"] == user
    assert caller["role"] == "admin"
    assert caller["plan"] == "starter"
    assert caller["ip"] == "10.9.8.7"
    assert caller["request_id"] == "trace-gw-000001"
    assert caller["exp"] - time.time() <= 30
    assert echo["path"] == "/echo/things"
    assert echo["query"] == "q=1"
    assert resp.headers["x-request-id"] == "trace-gw-000001"
    # Credentials stay at the gateway: the upstream trusts the assertion, never the token.
    assert "authorization" not in echo["headers"]


def test_revoked_jti_is_refused(gw: Stack, rds: redis.Redis) -> None:
    token, access = signer().issue(user_id=new_id(), tenant_id=new_id(), role="owner", plan="free")
    assert _get(gw, bearer(token)).status_code == 200  # verified and cached first
    rds.set(f"revoked:jti:{access.jti}", "1", ex=900)
    for base in gw.gateways:
        with client(base) as c:
            resp = c.get("/echo", headers=bearer(token))
        assert resp.status_code == 401
        assert problem(resp)["code"] == "token_revoked"


def test_revoked_user_sessions_refuse_older_tokens_only(gw: Stack, rds: redis.Redis) -> None:
    user = new_id()
    old = sign_rs256(claims(sub=user, iat=int(time.time()) - 60))
    assert _get(gw, bearer(old)).status_code == 200
    rds.set(f"revoked:user:{user}", str(int(time.time()) - 10), ex=900)
    resp = _get(gw, bearer(old))
    assert resp.status_code == 401
    assert problem(resp)["code"] == "token_revoked"
    fresh = sign_rs256(claims(sub=user))  # issued after the revocation
    assert _get(gw, bearer(fresh)).status_code == 200


async def _flood(base: str, headers: dict[str, str], n: int) -> list[int]:
    async with async_client(base) as c:
        responses = await asyncio.gather(*(c.get("/echo", headers=headers) for _ in range(n)))
    return [r.status_code for r in responses]


def test_unknown_kid_refetches_jwks_at_most_once_per_interval(gw: Stack, rds: redis.Redis) -> None:
    """STUB identity: the test publishes a rotated key in the JWKS and counts the fetches."""
    unknown = sign_rs256(claims(), key=other_rsa_key(), kid="never-published")
    time.sleep(3.1)  # GATEWAY_JWKS_MIN_REFETCH_SECONDS: earlier tests may have just refetched
    before = number(rds, STUB_JWKS_FETCHES)
    started = time.monotonic()
    statuses = asyncio.run(_flood(gw.gateway, bearer(unknown), 20))
    elapsed = time.monotonic() - started
    assert statuses == [401] * 20
    # A flood of unknown kids costs identity one fetch per refetch interval (3 s here).
    assert number(rds, STUB_JWKS_FETCHES) - before <= 1 + int(elapsed // 3)
    # Identity publishes a new key: tokens signed with it pass once the gateway refetches.
    key = other_rsa_key()
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    rotated = TokenSigner(private, issuer="catalytic-identity", audience="catalytic-api")
    assert rotated.kid != signer().kid
    rds.rpush(STUB_JWKS_EXTRA, public)
    try:
        token, _ = rotated.issue(user_id=new_id(), tenant_id=new_id(), role="owner", plan="free")
        resp = poll(lambda: _get(gw, bearer(token)), until=lambda r: r.status_code == 200, timeout=10)
        assert resp.status_code == 200, resp.text
    finally:
        rds.lrem(STUB_JWKS_EXTRA, 0, public)


def test_api_key_in_either_header_and_verification_is_cached(gw: Stack, rds: redis.Redis) -> None:
    """STUB identity: counts verification calls (the real one is in test_identity.py)."""
    key, row, _ = stub_api_key(rds, plan="professional", scopes=("echo:read", "jobs:run"))
    before = number(rds, STUB_VERIFY_CALLS)
    for base in gw.gateways:
        for headers in (bearer(key), {"X-API-Key": key}):
            for _ in range(5):
                with client(base) as c:
                    resp = c.get("/echo", headers=headers)
                assert resp.status_code == 200, resp.text
                caller = resp.json()["caller"]
                assert caller["kind"] == "api_key"
                assert caller["api_key_id"] == row.key_id
                assert caller["tenant_id"] == row.tenant_id
                assert caller["plan"] == "professional"
                assert caller["scopes"] == ["echo:read", "jobs:run"]
    # 20 requests on two gateways: identity was asked once; the rest came from the caches.
    assert number(rds, STUB_VERIFY_CALLS) - before == 1


def test_api_key_failures(gw: Stack, rds: redis.Redis) -> None:
    """STUB identity: holds an already expired key, which the real one will not create."""
    key, _, _ = stub_api_key(rds, scopes=("other:scope",))
    resp = _get(gw, bearer(key))
    assert resp.status_code == 403
    assert problem(resp)["code"] == "insufficient_scope"
    unknown, _, _ = stub_api_key(rds)
    rds.hdel("stub:identity:keys", unknown.split("_")[2])
    resp = _get(gw, {"X-API-Key": unknown})
    assert resp.status_code == 401
    assert problem(resp)["code"] == "api_key_invalid"
    resp = _get(gw, {"X-API-Key": "cc_live_short_secret"})
    assert resp.status_code == 401
    assert problem(resp)["code"] == "api_key_invalid"
    expired, _, _ = stub_api_key(rds, expires_at="2020-01-01T00:00:00Z")
    resp = _get(gw, bearer(expired))
    assert resp.status_code == 401
    assert problem(resp)["code"] == "api_key_invalid"


def test_revoked_api_key_is_refused_by_every_gateway(gw: Stack, rds: redis.Redis) -> None:
    """STUB identity: the revocation event exactly as the contract has it, and the Redis cache
    entry gone afterwards (with the real identity: test_identity.py)."""
    key, row, prefix = stub_api_key(rds)
    for base in gw.gateways:  # both gateways have it cached in-process (and Redis has it too)
        with client(base) as c:
            assert c.get("/echo", headers=bearer(key)).status_code == 200
    stub_revoke(rds, prefix, row)
    for base in gw.gateways:
        with client(base) as c:
            resp = poll(
                lambda c=c: c.get("/echo", headers=bearer(key)),
                until=lambda r: r.status_code == 401,
                timeout=5,
                interval=0.01,
            )
        assert resp.status_code == 401
        assert problem(resp)["code"] == "api_key_invalid"
    assert not list(rds.scan_iter(f"gw:apikey:{prefix}:*"))


def test_client_cannot_send_its_own_assertion(gw: Stack) -> None:
    forged = forged_assertion("echo")
    tenant = new_id()
    headers = {**bearer(mint(tenant=tenant)), "X-Catalytic-Assertion": forged, "X-Catalytic-Role": "owner"}
    resp = _get(gw, headers)
    assert resp.status_code == 200, resp.text
    echo = resp.json()
    assert echo["caller"]["tenant_id"] == tenant  # the gateway's statement, not the client's
    assert echo["headers"]["x-catalytic-assertion"] != forged
    assert "x-catalytic-role" not in echo["headers"]
    # Sent straight to an upstream, the forged assertion (or none) is refused there.
    direct = httpx.get(f"{gw.peer}/echo", headers={"x-catalytic-assertion": forged})
    assert direct.status_code == 401
    assert problem(direct)["code"] == "assertion_invalid"
    missing = httpx.get(f"{gw.peer}/echo")
    assert missing.status_code == 401
    assert problem(missing)["code"] == "assertion_missing"


def test_assertion_is_bound_to_its_upstream(gw: Stack) -> None:
    with client(gw.gateway) as c:
        resp = c.get("/billing/subscription", headers=bearer(mint()))
    assert resp.status_code == 200, resp.text
    assertion = resp.json()["headers"]["x-catalytic-assertion"]
    assert resp.json()["aud"] == "billing"
    # Replayed at another service (echo), a billing assertion is worthless.
    replay = httpx.get(f"{gw.peer}/echo", headers={"x-catalytic-assertion": assertion})
    assert replay.status_code == 401
    assert problem(replay)["code"] == "assertion_invalid"


def test_public_paths_exactly(gw: Stack) -> None:
    with client(gw.gateway, ip="10.1.2.3") as c:
        for path, aud in [
            ("/auth/login", "identity"),
            ("/billing/plans", "billing"),
            ("/.well-known/jwks.json", None),  # served by identity (here: the stub) without an assertion
            ("/webhooks/stripe", "billing"),
        ]:
            resp = c.post(path, json={}) if path.startswith(("/auth", "/webhooks")) else c.get(path)
            assert resp.status_code == 200, (path, resp.text)
            if aud is not None:
                assert resp.json()["aud"] == aud
                assert resp.json()["caller"]["kind"] == "anonymous"
                assert resp.json()["caller"]["ip"] == "10.1.2.3"
        for path in ("/billing/subscription", "/me", "/users", "/api-keys", "/usage", "/auth"):
            resp = c.get(path)
            assert resp.status_code == 401, path
        assert c.get("/health").json() == {"status": "ok"}


def test_public_path_with_a_token_carries_the_user(gw: Stack) -> None:
    """Logout is public in routing, but identity needs the token's jti to revoke it."""
    token, access = signer().issue(user_id=new_id(), tenant_id=new_id(), role="owner", plan="free")
    with client(gw.gateway) as c:
        resp = c.post("/auth/logout", headers=bearer(token))
        assert resp.status_code == 200, resp.text
        assert resp.json()["caller"]["kind"] == "user"
        assert resp.json()["caller"]["jti"] == access.jti
        # A bad token on a public path does not block it: the call goes on as anonymous.
        resp = c.post("/auth/login", headers=bearer("garbage"), json={})
    assert resp.status_code == 200
    assert resp.json()["caller"]["kind"] == "anonymous"


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        ("/internal/api-keys/verify", 404, "route_not_found"),
        ("/auth/../internal/api-keys/verify", 400, "bad_path"),
        ("/auth/%2e%2e/internal/api-keys/verify", 400, "bad_path"),
        ("/echo//x", 400, "bad_path"),
        ("/nothing-here", 404, "route_not_found"),
        ("/echoes", 404, "route_not_found"),  # prefixes match whole segments
    ],
)
def test_unrouted_and_unsafe_paths(gw: Stack, path: str, status: int, code: str) -> None:
    # Sent verbatim: an HTTP client library would tidy the dot segments away first.
    status_line, headers, body = raw_request(gw.gateway, "GET", path, bearer(mint()))
    assert status_line == status, body
    assert headers["content-type"].startswith("application/problem+json")
    assert json.loads(body)["code"] == code
