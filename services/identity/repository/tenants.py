"""Tenants and the counts their plan limits apply to."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from services.identity.repository.rows import Tenant, columns, one
from shared.db import Connection

_COLS = columns(Tenant)


async def insert(tx: Connection, tenant_id: UUID, name: str, plan: str) -> None:
    await tx.execute("INSERT INTO tenants (id, name, plan) VALUES ($1, $2, $3)", tenant_id, name, plan)


async def get(conn: Connection, tenant_id: UUID) -> Tenant | None:
    return one(await conn.fetchrow(f"SELECT {_COLS} FROM tenants WHERE id = $1", tenant_id), Tenant)


async def lock(tx: Connection, tenant_id: UUID) -> Tenant | None:
    """Serializes seat, key-limit and last-owner checks of one tenant."""
    row = await tx.fetchrow(f"SELECT {_COLS} FROM tenants WHERE id = $1 FOR UPDATE", tenant_id)
    return one(row, Tenant)


async def rename(tx: Connection, tenant_id: UUID, name: str) -> Tenant | None:
    row = await tx.fetchrow(
        f"UPDATE tenants SET name = $2, updated_at = now() WHERE id = $1 RETURNING {_COLS}", tenant_id, name
    )
    return one(row, Tenant)


async def set_plan(tx: Connection, tenant_id: UUID, plan: str, at: datetime) -> None:
    await tx.execute(
        "UPDATE tenants SET plan = $2, plan_changed_at = $3, updated_at = now() WHERE id = $1",
        tenant_id,
        plan,
        at,
    )


async def seats_used(conn: Connection, tenant_id: UUID) -> int:
    """Members plus pending, unexpired invitations: an invitation holds its seat."""
    value = await conn.fetchval(
        "SELECT (SELECT count(*) FROM users WHERE tenant_id = $1)"
        " + (SELECT count(*) FROM invitations WHERE tenant_id = $1 AND accepted_at IS NULL"
        "    AND revoked_at IS NULL AND expires_at > now())",
        tenant_id,
    )
    return int(value)


async def active_keys(conn: Connection, tenant_id: UUID) -> int:
    value = await conn.fetchval(
        "SELECT count(*) FROM api_keys WHERE tenant_id = $1 AND revoked_at IS NULL"
        " AND (expires_at IS NULL OR expires_at > now())",
        tenant_id,
    )
    return int(value)
