"""Tenants' names and users' emails, projected from identity's events."""

from __future__ import annotations

from uuid import UUID

from services.billing.models import Contact
from shared.db import Connection

# --- tenant contacts (projection of identity's events) ---------------------------------------


async def upsert_tenant(
    tx: Connection, tenant_id: UUID, name: str | None, owner_user_id: UUID | None
) -> None:
    await tx.execute(
        "INSERT INTO tenants (tenant_id, name, owner_user_id) VALUES ($1, coalesce($2, ''), $3)"
        " ON CONFLICT (tenant_id) DO UPDATE SET"
        " name = CASE WHEN coalesce($2, '') = '' THEN tenants.name ELSE $2 END,"
        " owner_user_id = coalesce($3, tenants.owner_user_id), updated_at = now()",
        tenant_id,
        name,
        owner_user_id,
    )


async def upsert_user(tx: Connection, tenant_id: UUID, user_id: UUID, email: str, role: str) -> None:
    await tx.execute(
        "INSERT INTO tenant_users (tenant_id, user_id, email, role) VALUES ($1, $2, $3, $4)"
        " ON CONFLICT (tenant_id, user_id) DO UPDATE SET email = EXCLUDED.email, role = EXCLUDED.role",
        tenant_id,
        user_id,
        email,
        role,
    )


async def set_user_role(tx: Connection, tenant_id: UUID, user_id: UUID, role: str) -> None:
    await tx.execute(
        "UPDATE tenant_users SET role = $3 WHERE tenant_id = $1 AND user_id = $2", tenant_id, user_id, role
    )


async def remove_user(tx: Connection, tenant_id: UUID, user_id: UUID) -> None:
    await tx.execute("DELETE FROM tenant_users WHERE tenant_id = $1 AND user_id = $2", tenant_id, user_id)


async def contact(tx: Connection, tenant_id: UUID) -> Contact:
    """The tenant's name and billing email: its owner's, else its earliest owner's or admin's."""
    row = await tx.fetchrow(
        "SELECT t.name AS tenant_name, (SELECT u.email FROM tenant_users u WHERE u.tenant_id = $1"
        "   ORDER BY coalesce(u.user_id = t.owner_user_id, false) DESC, (u.role = 'owner') DESC,"
        "   (u.role = 'admin') DESC,"
        "   u.created_at LIMIT 1) AS email"
        " FROM (SELECT $1::uuid AS tenant_id) k LEFT JOIN tenants t ON t.tenant_id = k.tenant_id",
        tenant_id,
    )
    if row is None:
        return Contact(email=None, tenant_name=None)
    return Contact(email=row["email"], tenant_name=row["tenant_name"] or None)
