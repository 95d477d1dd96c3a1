"""Single-use tokens sent by email (password reset, email verification), stored as SHA-256."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from services.identity.repository.rows import OneTimeToken, columns, one
from shared.db import Connection

_COLS = columns(OneTimeToken)


async def insert(
    tx: Connection,
    *,
    token_id: UUID,
    purpose: str,
    user_id: UUID,
    tenant_id: UUID,
    token_hash: str,
    expires_at: datetime,
) -> None:
    await tx.execute(
        "INSERT INTO one_time_tokens (id, purpose, user_id, tenant_id, token_hash, expires_at)"
        " VALUES ($1, $2, $3, $4, $5, $6)",
        token_id,
        purpose,
        user_id,
        tenant_id,
        token_hash,
        expires_at,
    )


async def consume(tx: Connection, purpose: str, token_hash: str) -> OneTimeToken | None:
    """Use a live token; one statement, so two concurrent uses cannot both succeed."""
    row = await tx.fetchrow(
        f"UPDATE one_time_tokens SET used_at = now() WHERE token_hash = $1 AND purpose = $2"
        f" AND used_at IS NULL AND expires_at > now() RETURNING {_COLS}",
        token_hash,
        purpose,
    )
    return one(row, OneTimeToken)


async def void_all(tx: Connection, tenant_id: UUID, user_id: UUID, purpose: str) -> None:
    """A newer token (or a completed flow) makes the older ones useless."""
    await tx.execute(
        "UPDATE one_time_tokens SET used_at = now()"
        " WHERE tenant_id = $1 AND user_id = $2 AND purpose = $3 AND used_at IS NULL",
        tenant_id,
        user_id,
        purpose,
    )


async def prune(conn: Connection, keep_days: int) -> int:
    status = await conn.execute(
        "DELETE FROM one_time_tokens WHERE expires_at < now() - make_interval(days => $1)", keep_days
    )
    return int(status.split()[-1])


async def peek(conn: Connection, purpose: str, token_hash: str) -> OneTimeToken | None:
    """A live token, without using it (to check the new password before hashing it)."""
    row = await conn.fetchrow(
        f"SELECT {_COLS} FROM one_time_tokens WHERE token_hash = $1 AND purpose = $2"
        " AND used_at IS NULL AND expires_at > now()",
        token_hash,
        purpose,
    )
    return one(row, OneTimeToken)
