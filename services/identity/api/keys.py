"""API keys, the gateway's key verification, and the public JWKS."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from litestar import Controller, Response, delete, get, post

from services.identity.schemas import ApiKeyCreated, ApiKeyIn, ApiKeyOut, VerifiedKey, VerifyKeyIn
from services.identity.service import apikeys
from services.identity.service.common import Identity
from shared.auth.assertion import Caller
from shared.db import Connection


class ApiKeysController(Controller):
    path = "/api-keys"
    tags = ["api keys"]

    @post("/", status_code=201)
    async def create(self, data: ApiKeyIn, caller: Caller, ctx: Identity, tx: Connection) -> ApiKeyCreated:
        return await apikeys.create(ctx, tx, caller, data)

    @get("/")
    async def list_keys(self, caller: Caller, tx: Connection) -> list[ApiKeyOut]:
        return await apikeys.list_active(tx, caller)

    @delete("/{key_id:uuid}", status_code=204)
    async def revoke(self, key_id: UUID, caller: Caller, ctx: Identity, tx: Connection) -> None:
        await apikeys.revoke(ctx, tx, caller, key_id)


class InternalController(Controller):
    path = "/internal"
    tags = ["internal"]
    include_in_schema = False

    @post("/api-keys/verify", status_code=200)
    async def verify_key(self, data: VerifyKeyIn, caller: Caller, tx: Connection) -> VerifiedKey:
        return await apikeys.verify(tx, caller, data)


@get("/.well-known/jwks.json", tags=["auth"], sync_to_thread=False)
def jwks(ctx: Identity) -> Response[dict[str, Any]]:
    """Public: the gateway (and anyone) verifies access tokens with these keys."""
    return Response(ctx.signer.jwks(), headers={"Cache-Control": "public, max-age=300"})
