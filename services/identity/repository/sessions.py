"""Refresh tokens (stored as SHA-256) grouped in families, one family per login."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import msgspec

from services.identity.repository.rows import RefreshToken, columns, many, one
from shared.db import Connection

_COLS = columns(RefreshToken)


async def insert(
    tx: Connection,
    *,
    token_id: UUID,
    family_id: UUID,
    user_id: UUID,
    tenant_id: UUID,
    token_hash: str,
    access_jti: str,
    access_expires_at: datetime,
    expires_at: datetime,
    family_expires_at: datetime,
    ip: str | None,
) -> None:
    await tx.execute(
        "INSERT INTO refresh_tokens (id, family_id, user_id, tenant_id, token_hash, access_jti,"
        " access_expires_at, expires_at, family_expires_at, created_ip)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        token_id,
        family_id,
        user_id,
        tenant_id,
        token_hash,
        access_jti,
        access_expires_at,
        expires_at,
        family_expires_at,
        ip,
    )


async def lock_by_hash(tx: Connection, token_hash: str) -> RefreshToken | None:
    """The presented token, locked: two refreshes with one token are serialized."""
    row = await tx.fetchrow(
        f"SELECT {_COLS} FROM refresh_tokens WHERE token_hash = $1 FOR UPDATE", token_hash
    )
    return one(row, RefreshToken)


async def by_access_jti(conn: Connection, tenant_id: UUID, user_id: UUID, jti: str) -> RefreshToken | None:
    row = await conn.fetchrow(
        f"SELECT {_COLS} FROM refresh_tokens WHERE tenant_id = $1 AND user_id = $2 AND access_jti = $3",
        tenant_id,
        user_id,
        jti,
    )
    return one(row, RefreshToken)


async def by_hash_of_user(
    conn: Connection, tenant_id: UUID, user_id: UUID, token_hash: str
) -> RefreshToken | None:
    row = await conn.fetchrow(
        f"SELECT {_COLS} FROM refresh_tokens WHERE tenant_id = $1 AND user_id = $2 AND token_hash = $3",
        tenant_id,
        user_id,
        token_hash,
    )
    return one(row, RefreshToken)


async def mark_rotated(tx: Connection, token_id: UUID) -> None:
    await tx.execute("UPDATE refresh_tokens SET rotated_at = now() WHERE id = $1", token_id)


async def revoke_family(tx: Connection, family_id: UUID, reason: str) -> int:
    status = await tx.execute(
        "UPDATE refresh_tokens SET revoked_at = now(), revoke_reason = $2"
        " WHERE family_id = $1 AND revoked_at IS NULL",
        family_id,
        reason,
    )
    return int(status.split()[-1])


async def revoke_user(tx: Connection, tenant_id: UUID, user_id: UUID, reason: str) -> list[UUID]:
    """Revoke every live family of a user; returns the families that were live."""
    rows = await tx.fetch(
        "UPDATE refresh_tokens SET revoked_at = now(), revoke_reason = $3"
        " WHERE tenant_id = $1 AND user_id = $2 AND revoked_at IS NULL RETURNING family_id",
        tenant_id,
        user_id,
        reason,
    )
    return sorted({r["family_id"] for r in rows})


async def prune(conn: Connection, keep_days: int) -> int:
    status = await conn.execute(
        "DELETE FROM refresh_tokens WHERE expires_at < now() - make_interval(days => $1)", keep_days
    )
    return int(status.split()[-1])


class Session(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID  # the family: one login on one device
    started_at: datetime
    last_refreshed_at: datetime
    expires_at: datetime
    ip: str | None
    current: bool


async def live_families(conn: Connection, tenant_id: UUID, user_id: UUID, jti: str | None) -> list[Session]:
    rows = await conn.fetch(
        "SELECT family_id AS id, min(created_at) AS started_at, max(created_at) AS last_refreshed_at,"
        " max(expires_at) AS expires_at, (array_agg(created_ip ORDER BY created_at DESC))[1] AS ip,"
        " coalesce(bool_or(access_jti = $3), false) AS current"
        " FROM refresh_tokens WHERE tenant_id = $1 AND user_id = $2"
        " GROUP BY family_id HAVING bool_and(revoked_at IS NULL) AND max(expires_at) > now()"
        " ORDER BY last_refreshed_at DESC",
        tenant_id,
        user_id,
        jti,
    )
    return many(rows, Session)


async def revoke_family_of_user(tx: Connection, tenant_id: UUID, user_id: UUID, family_id: UUID) -> bool:
    status = await tx.execute(
        "UPDATE refresh_tokens SET revoked_at = now(), revoke_reason = 'user_revoked'"
        " WHERE tenant_id = $1 AND user_id = $2 AND family_id = $3 AND revoked_at IS NULL",
        tenant_id,
        user_id,
        family_id,
    )
    return not status.endswith(" 0")
