"""Helpers of the gateway tests: tokens, API keys, events, clients with their own client address."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random
import socket
import time
import uuid
from functools import cache
from typing import Any
from urllib.parse import urlsplit

import httpx
import jwt
import msgspec
import redis
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from shared import events
from shared.auth import apikeys
from shared.auth.assertion import AssertionSigner, Caller
from shared.auth.tokens import TokenSigner
from tests.conftest import TEST_ROOT
from tests.gateway.peer import STUB_KEYS, KeyRow

ISSUER = "catalytic-identity"
AUDIENCE = "catalytic-api"


@cache
def signer() -> TokenSigner:
    return TokenSigner((TEST_ROOT / "keys" / "jwt_private.pem").read_text(), issuer=ISSUER, audience=AUDIENCE)


def new_id() -> str:
    return str(uuid.uuid4())


def mint(
    *, tenant: str | None = None, user: str | None = None, plan: str = "free", role: str = "owner"
) -> str:
    token, _ = signer().issue(user_id=user or new_id(), tenant_id=tenant or new_id(), role=role, plan=plan)
    return token


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    base: dict[str, Any] = {
        "sub": new_id(),
        "tenant_id": new_id(),
        "role": "owner",
        "plan": "free",
        "jti": uuid.uuid4().hex,
        "iss": ISSUER,
        "aud": AUDIENCE,
        "iat": now,
        "nbf": now,
        "exp": now + 900,
    }
    base.update(overrides)
    return base


def sign_rs256(payload: dict[str, Any], *, key: Any = None, kid: str | None = None) -> str:
    """An RS256 token signed with `key` (default: the real key) under `kid` (default: the real kid)."""
    if key is None:
        key = serialization.load_pem_private_key(
            (TEST_ROOT / "keys" / "jwt_private.pem").read_bytes(), password=None
        )
    return jwt.encode(payload, key, algorithm="RS256", headers={"kid": kid or signer().kid})


def other_rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned(payload: dict[str, Any]) -> str:
    header = {"alg": "none", "typ": "JWT", "kid": signer().kid}
    return f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(payload).encode())}."


def hs256_with_public_key(payload: dict[str, Any]) -> str:
    """The classic RS/HS confusion: HMAC keyed with the (public) verification key."""
    header = {"alg": "HS256", "typ": "JWT", "kid": signer().kid}
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(payload).encode())}"
    public_pem = (TEST_ROOT / "keys" / "jwt_public.pem").read_bytes()
    signature = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def random_ip() -> str:
    return f"10.{random.randint(0, 255)}.{random.randint(0, 255)}.{random.randint(1, 254)}"


def client(base: str, ip: str | None = None, **kwargs: Any) -> httpx.Client:
    """A client that appears (through the trusted local proxy address) as `ip`."""
    headers = {"X-Forwarded-For": ip or random_ip()}
    return httpx.Client(base_url=base, headers=headers, timeout=15, **kwargs)


def async_client(base: str, ip: str | None = None, **kwargs: Any) -> httpx.AsyncClient:
    headers = {"X-Forwarded-For": ip or random_ip()}
    return httpx.AsyncClient(base_url=base, headers=headers, timeout=30, **kwargs)


# --- API keys through the identity stub --------------------------------------------------------


def stub_api_key(
    rds: redis.Redis,
    *,
    tenant: str | None = None,
    plan: str = "free",
    scopes: tuple[str, ...] = ("echo:read",),
    expires_at: str | None = None,
) -> tuple[str, KeyRow, str]:
    """(full key, row, prefix) of a key the identity stub will verify."""
    key = apikeys.generate("live")
    row = KeyRow(
        secret_hash=key.secret_hash,
        key_id=new_id(),
        tenant_id=tenant or new_id(),
        scopes=list(scopes),
        plan=plan,
        expires_at=expires_at,
    )
    rds.hset(STUB_KEYS, key.prefix, msgspec.json.encode(row).decode())
    return key.full, row, key.prefix


def stub_revoke(rds: redis.Redis, prefix: str, row: KeyRow) -> None:
    """What identity does: the key stops verifying, then `identity.api_key.revoked` is published."""
    rds.hset(STUB_KEYS, prefix, msgspec.json.encode(msgspec.structs.replace(row, revoked=True)).decode())
    payload = events.ApiKeyRevoked(key_id=uuid.UUID(row.key_id), prefix=prefix, key_hash=row.secret_hash)
    publish(rds, events.new_event(payload, tenant_id=uuid.UUID(row.tenant_id)))


def publish(rds: redis.Redis, event: events.Event[Any]) -> None:
    """The outbox relay's XADD, field for field."""
    rds.xadd(events.stream_of(event), {"type": event.type, "event": events.encode(event)})


def plan_changed(rds: redis.Redis, tenant: str, plan: str, previous: str = "free") -> None:
    payload = events.SubscriptionChanged(
        subscription_id=f"sub_{uuid.uuid4().hex[:12]}", plan=plan, status="active", previous_plan=previous
    )
    publish(rds, events.new_event(payload, tenant_id=uuid.UUID(tenant)))


def problem(resp: httpx.Response) -> dict[str, Any]:
    assert resp.headers["content-type"].startswith("application/problem+json"), resp.text
    body: dict[str, Any] = resp.json()
    assert body["status"] == resp.status_code
    return body


def poll(fn: Any, *, until: Any, timeout: float = 10.0, interval: float = 0.02) -> Any:
    """Call fn until `until(result)` holds or the deadline passes; return the last result."""
    deadline = time.monotonic() + timeout
    while True:
        result = fn()
        if until(result) or time.monotonic() > deadline:
            return result
        time.sleep(interval)


def raw_request(
    base: str, method: str, target: str, headers: dict[str, str], body: bytes = b""
) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 exchange with the request target sent exactly as given."""
    parts = urlsplit(base)
    lines = [f"{method} {target} HTTP/1.1", f"Host: {parts.netloc}", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in {"X-Forwarded-For": random_ip(), **headers}.items()]
    if body:
        lines.append(f"Content-Length: {len(body)}")
    with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 80), timeout=15) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    found = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        found[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), found, rest


def forged_assertion(aud: str) -> str:
    """A well-formed assertion signed with a key that is not the gateway's."""
    pem = ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    caller = Caller(
        kind="user", aud=aud, exp=time.time() + 30, tenant_id=uuid.uuid4(), user_id=uuid.uuid4(), role="owner"
    )
    return AssertionSigner(pem.decode()).sign(caller)


def number(rds: redis.Redis, key: str) -> int:
    """An integer Redis value, 0 when absent."""
    value: Any = rds.get(key)
    return int(value or 0)
