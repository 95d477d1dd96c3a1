"""API keys: the prefix and a SHA-256 of the secret; the secret itself is never stored."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from services.identity.repository.rows import ApiKey, columns, many, one
from shared.db import Connection

_COLS = columns(ApiKey)


async def insert(
    tx: Connection,
    *,
    key_id: UUID,
    tenant_id: UUID,
    name: str,
    env: str,
    prefix: str,
    secret_hash: str,
    scopes: list[str],
    created_by: UUID | None,
    expires_at: datetime | None,
) -> ApiKey:
    row = await tx.fetchrow(
        "INSERT INTO api_keys (id, tenant_id, name, env, prefix, secret_hash, scopes, created_by, expires_at)"
        f" VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING {_COLS}",
        key_id,
        tenant_id,
        name,
        env,
        prefix,
        secret_hash,
        scopes,
        created_by,
        expires_at,
    )
    key = one(row, ApiKey)
    assert key is not None
    return key


async def list_active(conn: Connection, tenant_id: UUID) -> list[ApiKey]:
    rows = await conn.fetch(
        f"SELECT {_COLS} FROM api_keys WHERE tenant_id = $1 AND revoked_at IS NULL ORDER BY created_at, id",
        tenant_id,
    )
    return many(rows, ApiKey)


async def get(conn: Connection, tenant_id: UUID, key_id: UUID) -> ApiKey | None:
    row = await conn.fetchrow(
        f"SELECT {_COLS} FROM api_keys WHERE tenant_id = $1 AND id = $2", tenant_id, key_id
    )
    return one(row, ApiKey)


async def revoke(tx: Connection, tenant_id: UUID, key_id: UUID, by: str | None) -> ApiKey | None:
    row = await tx.fetchrow(
        "UPDATE api_keys SET revoked_at = now(), revoked_by = $3"
        f" WHERE tenant_id = $1 AND id = $2 AND revoked_at IS NULL RETURNING {_COLS}",
        tenant_id,
        key_id,
        by,
    )
    return one(row, ApiKey)


async def by_prefix(conn: Connection, prefix: str) -> tuple[ApiKey, str] | None:
    """The key and its tenant's plan, for the gateway's verification."""
    row = await conn.fetchrow(
        f"SELECT {', '.join('k.' + c for c in _COLS.split(', '))}, t.plan AS tenant_plan"
        " FROM api_keys k JOIN tenants t ON t.id = k.tenant_id WHERE k.prefix = $1",
        prefix,
    )
    if row is None:
        return None
    values = dict(row)
    plan = values.pop("tenant_plan")
    return ApiKey(**values), plan


async def touch(tx: Connection, ids: list[UUID], times: list[datetime]) -> int:
    """Move last_used_at forward only: batches may arrive late or twice."""
    status = await tx.execute(
        "UPDATE api_keys k SET last_used_at = u.at FROM unnest($1::uuid[], $2::timestamptz[]) AS u(id, at)"
        " WHERE k.id = u.id AND (k.last_used_at IS NULL OR k.last_used_at < u.at)",
        ids,
        times,
    )
    return int(status.split()[-1])
