"""API keys: created (shown once), listed without secrets, revoked (with an event carrying the
secret's hash so every gateway drops its cached verification), verified for the gateway."""

from __future__ import annotations

from uuid import UUID

from services.identity import errors
from services.identity.repository import keys, tenants
from services.identity.schemas import ApiKeyCreated, ApiKeyIn, ApiKeyOut, VerifiedKey, VerifyKeyIn
from services.identity.service.common import Identity, actor, emit, key_out, now
from services.identity.service.members import acting_role, tenant_of
from shared.auth import apikeys
from shared.auth.assertion import Caller
from shared.auth.errors import ApiKeyInvalid
from shared.db import Connection
from shared.events import ApiKeyCreated as ApiKeyCreatedEvent
from shared.events import ApiKeyRevoked
from shared.ids import uuid7
from shared.plans import plan as plan_of

_NO_HASH = "0" * 64  # compared against when the prefix is unknown: same work either way


async def create(ctx: Identity, tx: Connection, caller: Caller, data: ApiKeyIn) -> ApiKeyCreated:
    await acting_role(tx, caller)
    tenant = await tenants.lock(tx, tenant_of(caller))
    if tenant is None:
        raise errors.TenantNotFound()
    if data.expires_at is not None and data.expires_at <= now():
        raise errors.InvalidExpiry()
    limits = plan_of(tenant.plan)
    if await tenants.active_keys(tx, tenant.id) >= limits.api_keys:
        raise errors.ApiKeyLimitReached(f"the {limits.name} plan allows {limits.api_keys} active API keys")
    made = apikeys.generate(data.env)
    scopes = sorted(set(data.scopes))
    key = await keys.insert(
        tx,
        key_id=uuid7(),
        tenant_id=tenant.id,
        name=data.name.strip() or "key",
        env=data.env,
        prefix=made.prefix,
        secret_hash=made.secret_hash,
        scopes=scopes,
        created_by=caller.user_id,
        expires_at=data.expires_at,
    )
    event = ApiKeyCreatedEvent(key_id=key.id, prefix=key.prefix, name=key.name, scopes=tuple(scopes))
    await emit(tx, event, tenant_id=tenant.id, by=actor(caller))
    return ApiKeyCreated(**{f: getattr(key_out(key), f) for f in ApiKeyOut.__struct_fields__}, key=made.full)


async def list_active(conn: Connection, caller: Caller) -> list[ApiKeyOut]:
    await acting_role(conn, caller)
    return [key_out(k) for k in await keys.list_active(conn, tenant_of(caller))]


async def revoke(ctx: Identity, tx: Connection, caller: Caller, key_id: UUID) -> None:
    await acting_role(tx, caller)
    by = actor(caller)
    key = await keys.revoke(tx, tenant_of(caller), key_id, f"{by.kind}:{by.id}")
    if key is None:
        raise errors.ApiKeyNotFound()
    event = ApiKeyRevoked(key_id=key.id, prefix=key.prefix, key_hash=key.secret_hash)
    await emit(tx, event, tenant_id=key.tenant_id, by=by)


async def verify(conn: Connection, caller: Caller, data: VerifyKeyIn) -> VerifiedKey:
    """For the gateway only; unknown, revoked and expired keys all get the same 401."""
    if caller.kind != "service":
        raise errors.ServiceCallerRequired()
    found = await keys.by_prefix(conn, data.prefix)
    stored = found[0].secret_hash if found else _NO_HASH
    matches = apikeys.same_hash(stored, data.secret_hash)
    if found is None or not matches or found[0].env != data.env:
        raise ApiKeyInvalid()
    key, tenant_plan = found
    if key.revoked_at is not None or (key.expires_at is not None and key.expires_at <= now()):
        raise ApiKeyInvalid()
    return VerifiedKey(
        key_id=key.id,
        tenant_id=key.tenant_id,
        scopes=list(key.scopes),
        plan=plan_of(tenant_plan).id,
        expires_at=key.expires_at,
    )
