"""Invitations to join a tenant; the token travels by email, only its SHA-256 is kept."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from services.identity.repository.rows import Invitation, columns, many, one
from shared.db import Connection

_COLS = columns(Invitation)
_PENDING = "accepted_at IS NULL AND revoked_at IS NULL AND expires_at > now()"


async def insert(
    tx: Connection,
    *,
    invitation_id: UUID,
    tenant_id: UUID,
    email: str,
    role: str,
    token_hash: str,
    invited_by: UUID | None,
    expires_at: datetime,
) -> Invitation | None:
    """None when the email already has a pending invitation to this tenant."""
    # An expired pending row would block the unique index: retire it first.
    await tx.execute(
        "UPDATE invitations SET revoked_at = now() WHERE tenant_id = $1 AND email = $2"
        " AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at <= now()",
        tenant_id,
        email,
    )
    row = await tx.fetchrow(
        "INSERT INTO invitations (id, tenant_id, email, role, token_hash, invited_by, expires_at)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7)"
        f" ON CONFLICT (tenant_id, email) WHERE accepted_at IS NULL AND revoked_at IS NULL DO NOTHING"
        f" RETURNING {_COLS}",
        invitation_id,
        tenant_id,
        email,
        role,
        token_hash,
        invited_by,
        expires_at,
    )
    return one(row, Invitation)


async def pending(conn: Connection, tenant_id: UUID) -> list[Invitation]:
    rows = await conn.fetch(
        f"SELECT {_COLS} FROM invitations WHERE tenant_id = $1 AND {_PENDING} ORDER BY created_at, id",
        tenant_id,
    )
    return many(rows, Invitation)


async def revoke(tx: Connection, tenant_id: UUID, invitation_id: UUID) -> Invitation | None:
    row = await tx.fetchrow(
        f"UPDATE invitations SET revoked_at = now() WHERE tenant_id = $1 AND id = $2 AND {_PENDING}"
        f" RETURNING {_COLS}",
        tenant_id,
        invitation_id,
    )
    return one(row, Invitation)


async def accept(tx: Connection, token_hash: str) -> Invitation | None:
    row = await tx.fetchrow(
        f"UPDATE invitations SET accepted_at = now() WHERE token_hash = $1 AND {_PENDING} RETURNING {_COLS}",
        token_hash,
    )
    return one(row, Invitation)


async def prune(conn: Connection, keep_days: int) -> int:
    status = await conn.execute(
        "DELETE FROM invitations WHERE expires_at < now() - make_interval(days => $1)", keep_days
    )
    return int(status.split()[-1])


async def peek(conn: Connection, token_hash: str) -> Invitation | None:
    row = await conn.fetchrow(
        f"SELECT {_COLS} FROM invitations WHERE token_hash = $1 AND {_PENDING}", token_hash
    )
    return one(row, Invitation)


async def is_pending(conn: Connection, tenant_id: UUID, email: str) -> bool:
    found = await conn.fetchval(
        f"SELECT 1 FROM invitations WHERE tenant_id = $1 AND email = $2 AND {_PENDING}", tenant_id, email
    )
    return bool(found)
