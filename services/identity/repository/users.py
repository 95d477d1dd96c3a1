"""Users; every query but the login lookup (by globally unique email) is scoped by tenant."""

from __future__ import annotations

from uuid import UUID

from services.identity.repository.rows import User, columns, many, one
from shared.db import Connection

_COLS = columns(User)


async def insert(
    tx: Connection,
    *,
    user_id: UUID,
    tenant_id: UUID,
    email: str,
    password_hash: str,
    role: str,
    first_name: str | None,
    last_name: str | None,
    verified: bool,
) -> bool:
    """False when the email is taken (also when a concurrent request took it first)."""
    row = await tx.fetchrow(
        "INSERT INTO users (id, tenant_id, email, password_hash, role, first_name, last_name,"
        " email_verified_at) VALUES ($1, $2, $3, $4, $5, $6, $7, CASE WHEN $8 THEN now() END)"
        " ON CONFLICT (email) DO NOTHING RETURNING id",
        user_id,
        tenant_id,
        email,
        password_hash,
        role,
        first_name,
        last_name,
        verified,
    )
    return row is not None


async def by_email(conn: Connection, email: str) -> User | None:
    return one(await conn.fetchrow(f"SELECT {_COLS} FROM users WHERE email = $1", email), User)


async def email_taken(conn: Connection, email: str) -> bool:
    return bool(await conn.fetchval("SELECT 1 FROM users WHERE email = $1", email))


async def get(conn: Connection, tenant_id: UUID, user_id: UUID) -> User | None:
    row = await conn.fetchrow(
        f"SELECT {_COLS} FROM users WHERE tenant_id = $1 AND id = $2", tenant_id, user_id
    )
    return one(row, User)


async def list_all(conn: Connection, tenant_id: UUID) -> list[User]:
    rows = await conn.fetch(
        f"SELECT {_COLS} FROM users WHERE tenant_id = $1 ORDER BY created_at, id", tenant_id
    )
    return many(rows, User)


async def count_owners(conn: Connection, tenant_id: UUID) -> int:
    value = await conn.fetchval(
        "SELECT count(*) FROM users WHERE tenant_id = $1 AND role = 'owner'", tenant_id
    )
    return int(value)


async def set_role(tx: Connection, tenant_id: UUID, user_id: UUID, role: str) -> User | None:
    row = await tx.fetchrow(
        f"UPDATE users SET role = $3, updated_at = now() WHERE tenant_id = $1 AND id = $2 RETURNING {_COLS}",
        tenant_id,
        user_id,
        role,
    )
    return one(row, User)


async def delete(tx: Connection, tenant_id: UUID, user_id: UUID) -> None:
    await tx.execute("DELETE FROM users WHERE tenant_id = $1 AND id = $2", tenant_id, user_id)


async def set_password(tx: Connection, tenant_id: UUID, user_id: UUID, password_hash: str) -> None:
    await tx.execute(
        "UPDATE users SET password_hash = $3, password_changed_at = now(), updated_at = now()"
        " WHERE tenant_id = $1 AND id = $2",
        tenant_id,
        user_id,
        password_hash,
    )


async def rehash(conn: Connection, tenant_id: UUID, user_id: UUID, old_hash: str, new_hash: str) -> None:
    """Upgrade a hash made with older parameters; a concurrent password change wins."""
    await conn.execute(
        "UPDATE users SET password_hash = $4 WHERE tenant_id = $1 AND id = $2 AND password_hash = $3",
        tenant_id,
        user_id,
        old_hash,
        new_hash,
    )


async def mark_verified(tx: Connection, tenant_id: UUID, user_id: UUID) -> bool:
    """True when this call verified the address (False: already verified or gone)."""
    status = await tx.execute(
        "UPDATE users SET email_verified_at = now(), updated_at = now()"
        " WHERE tenant_id = $1 AND id = $2 AND email_verified_at IS NULL",
        tenant_id,
        user_id,
    )
    return status.endswith(" 1")


async def count(conn: Connection, tenant_id: UUID) -> int:
    return int(await conn.fetchval("SELECT count(*) FROM users WHERE tenant_id = $1", tenant_id))
