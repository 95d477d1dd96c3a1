"""Rows brought over from the legacy monolith (`catalytic import-legacy`); ids are deterministic,
so a second import finds the first one's rows and adds nothing."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from shared.db import Connection

Outcome = Literal["imported", "already imported", "email taken"]


async def insert_tenant(tx: Connection, tenant_id: UUID, name: str, plan: str, created_at: datetime) -> bool:
    row = await tx.fetchrow(
        "INSERT INTO tenants (id, name, plan, created_at, updated_at) VALUES ($1, $2, $3, $4, $4)"
        " ON CONFLICT (id) DO NOTHING RETURNING id",
        tenant_id,
        name,
        plan,
        created_at,
    )
    return row is not None


async def insert_user(
    tx: Connection,
    *,
    user_id: UUID,
    tenant_id: UUID,
    email: str,
    password_hash: str,
    role: str,
    first_name: str | None,
    last_name: str | None,
    verified_at: datetime | None,
    created_at: datetime,
) -> Outcome:
    owner = await tx.fetchval("SELECT id FROM users WHERE email = $1", email)
    if owner is not None:
        return "already imported" if owner == user_id else "email taken"
    await tx.execute(
        "INSERT INTO users (id, tenant_id, email, password_hash, role, first_name, last_name,"
        " email_verified_at, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)",
        user_id,
        tenant_id,
        email,
        password_hash,
        role,
        first_name,
        last_name,
        verified_at,
        created_at,
    )
    return "imported"


async def insert_api_key(
    tx: Connection,
    *,
    key_id: UUID,
    tenant_id: UUID,
    name: str,
    env: str,
    prefix: str,
    secret_hash: str,
    scopes: list[str],
    created_at: datetime,
    expires_at: datetime | None,
    revoked_at: datetime | None,
) -> bool:
    row = await tx.fetchrow(
        "INSERT INTO api_keys (id, tenant_id, name, env, prefix, secret_hash, scopes, created_at,"
        " expires_at, revoked_at, revoked_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10,"
        " CASE WHEN $10::timestamptz IS NULL THEN NULL ELSE 'legacy' END)"
        " ON CONFLICT DO NOTHING RETURNING id",
        key_id,
        tenant_id,
        name,
        env,
        prefix,
        secret_hash,
        scopes,
        created_at,
        expires_at,
        revoked_at,
    )
    return row is not None


async def api_key_exists(conn: Connection, key_id: UUID) -> bool:
    return bool(await conn.fetchval("SELECT 1 FROM api_keys WHERE id = $1", key_id))
