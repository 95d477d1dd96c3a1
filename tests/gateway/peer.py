"""A real HTTP peer for the gateway tests: an echo upstream, slow and streaming endpoints, and a stub
of identity's contract (JWKS and API-key verification) for as long as the real identity lacks it.

Run as a process: `python -m tests.gateway.peer PORT` with the platform's environment.
"""

from __future__ import annotations

import asyncio
import base64
import os
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import msgspec
import uvicorn
from litestar import Request, Response, get, post, route
from litestar.enums import HttpMethod
from litestar.response import Stream
from redis.asyncio import Redis

from shared.auth import apikeys
from shared.auth.assertion import HEADER, AssertionVerifier, Caller
from shared.auth.errors import AssertionInvalid, AssertionMissing, InsufficientRole
from shared.auth.tokens import TokenSigner
from shared.errors import Unauthorized
from shared.http import create_app
from shared.http.caller import CALLER
from shared.settings import CommonSettings, load_settings

# Keys the tests manage in Redis (database of the platform).
STUB_KEYS = "stub:identity:keys"  # hash: prefix -> KeyRow JSON
STUB_JWKS_EXTRA = "stub:identity:jwks-extra"  # list of extra public PEMs served in the JWKS
STUB_JWKS_FETCHES = "stub:identity:jwks-fetches"
STUB_VERIFY_CALLS = "stub:identity:verify-calls"
ALL_METHODS = [
    HttpMethod.GET,
    HttpMethod.POST,
    HttpMethod.PUT,
    HttpMethod.PATCH,
    HttpMethod.DELETE,
    HttpMethod.HEAD,
]


class KeyRow(msgspec.Struct, frozen=True, kw_only=True):
    secret_hash: str
    key_id: str
    tenant_id: str
    scopes: list[str]
    plan: str
    expires_at: str | None = None
    revoked: bool = False


class ApiKeyVerifyIn(msgspec.Struct, frozen=True):
    prefix: str
    secret_hash: str


class ApiKeyInvalid(Unauthorized):
    code = "api_key_invalid"
    title = "Invalid API key"


def _redis(request: Request[Any, Any, Any]) -> Redis:
    redis: Redis = request.app.state.resources.redis
    return redis


def _echo(request: Request[Any, Any, Any], caller: Caller, body: bytes) -> dict[str, Any]:
    return {
        "aud": caller.aud,
        "caller": msgspec.to_builtins(caller),
        "method": request.method,
        "path": request.url.path,
        "query": request.url.query,
        "headers": dict(request.headers.items()),
        "body_bytes": len(body),
    }


@route(["/echo", "/echo/{rest:path}"], http_method=ALL_METHODS, status_code=200)
async def echo(request: Request[Any, Any, Any], caller: Caller) -> dict[str, Any]:
    return _echo(request, caller, await request.body())


@post("/upload", status_code=200)
async def upload(request: Request[Any, Any, Any], caller: Caller) -> dict[str, Any]:
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
    return {"received": size, "aud": caller.aud}


@get("/slow")
async def slow(caller: Caller, seconds: float = 3.0) -> dict[str, str]:
    await asyncio.sleep(seconds)
    return {"slept": str(seconds)}


@get("/stream")
async def stream(caller: Caller, size: int = 1_000_000) -> Stream:
    async def chunks() -> AsyncIterator[bytes]:
        left = size
        while left > 0:
            n = min(left, 65_536)
            left -= n
            yield b"x" * n
            await asyncio.sleep(0)

    return Stream(chunks(), media_type="application/octet-stream")


@get("/schema/openapi.json", include_in_schema=False, sync_to_thread=False)
def schema(request: Request[Any, Any, Any]) -> dict[str, Any]:
    """A hand-written document: what a product upstream publishes (with one internal path)."""
    return {
        "openapi": "3.1.0",
        "info": {"title": "echo", "version": "1"},
        "paths": {
            "/echo": {"get": {"operationId": "echo", "responses": {"200": {"description": "ok"}}}},
            "/internal/secret": {"get": {"responses": {"200": {"description": "hidden"}}}},
        },
        "components": {"schemas": {"Echo": {"type": "object"}}},
    }


# --- stub of identity's contract ------------------------------------------------------------------


@get("/.well-known/jwks.json")
async def jwks(request: Request[Any, Any, Any]) -> dict[str, Any]:
    redis = _redis(request)
    await redis.incr(STUB_JWKS_FETCHES)
    found: Any = await redis.lrange(STUB_JWKS_EXTRA, 0, -1)  # type: ignore[misc]
    extra = tuple(p.decode() for p in found)
    settings = request.app.state.peer_settings
    signer = TokenSigner(
        Path(settings["jwt_private_key_file"]).read_text(),
        issuer="catalytic-identity",
        audience="catalytic-api",
        extra_public_pems=extra,
    )
    return signer.jwks()


def _verified(request: Request[Any, Any, Any], audience: str) -> Caller:
    token = request.headers.get(HEADER)
    if not token:
        raise AssertionMissing()
    verifier = AssertionVerifier(request.app.state.peer_settings["assertion_public_key"], audience)
    return verifier.verify(token)


@post("/internal/api-keys/verify", status_code=200)
async def verify_key(request: Request[Any, Any, Any], data: ApiKeyVerifyIn) -> dict[str, Any]:
    caller = _verified(request, "identity")
    if caller.kind != "service":
        raise InsufficientRole("only the gateway may verify keys")
    redis = _redis(request)
    await redis.incr(STUB_VERIFY_CALLS)
    raw: Any = await redis.hget(STUB_KEYS, data.prefix)  # type: ignore[misc]
    if raw is None:
        raise ApiKeyInvalid()
    row = msgspec.json.decode(raw, type=KeyRow)
    if row.revoked or not apikeys.same_hash(row.secret_hash, data.secret_hash):
        raise ApiKeyInvalid()
    return {
        "key_id": row.key_id,
        "tenant_id": row.tenant_id,
        "scopes": row.scopes,
        "plan": row.plan,
        "expires_at": row.expires_at,
    }


# --- whatever else the gateway routes here (identity/billing/usage/notifier prefixes) ---------------


@route("/{rest:path}", http_method=ALL_METHODS, status_code=200)
async def anything(request: Request[Any, Any, Any], rest: str) -> Response[dict[str, Any]]:
    """Verifies the assertion against the audience it names: this peer stands in for every service."""
    token = request.headers.get(HEADER) or ""
    body, _, _ = token.partition(".")
    try:
        claimed = msgspec.json.decode(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    except (ValueError, msgspec.DecodeError):
        raise AssertionInvalid() from None
    caller = _verified(request, str(claimed.get("aud", "")) if isinstance(claimed, dict) else "")
    return Response(_echo(request, caller, await request.body()))


def app() -> Any:
    settings = load_settings(CommonSettings, "PEER")
    site = create_app(
        service="echo",
        settings=settings,
        route_handlers=[echo, upload, slow, stream, schema, jwks, verify_key, anything],
        dependencies=CALLER,
        max_body_bytes=64 * 1024 * 1024,
        openapi=False,
    )
    site.state.peer_settings = {
        "jwt_private_key_file": os.environ["JWT_PRIVATE_KEY_FILE"],
        "assertion_public_key": settings.assertion_public_key,
    }
    site.state.started = time.time()
    return site


if __name__ == "__main__":
    uvicorn.run(app(), host="127.0.0.1", port=int(sys.argv[1]), log_config=None, access_log=False)
