"""The contacts projection: tenant names and member emails, kept from identity events."""

from __future__ import annotations

from uuid import UUID

import msgspec

from shared.db import Connection


class Contact(msgspec.Struct, frozen=True):
    user_id: UUID
    email: str
    role: str
    first_name: str | None


async def upsert_tenant(
    tx: Connection, tenant_id: UUID, name: str, owner_user_id: UUID | None = None
) -> None:
    await tx.execute(
        "INSERT INTO tenants (tenant_id, name, owner_user_id) VALUES ($1, $2, $3)"
        " ON CONFLICT (tenant_id) DO UPDATE SET"
        " name = CASE WHEN EXCLUDED.name <> '' THEN EXCLUDED.name ELSE tenants.name END,"
        " owner_user_id = coalesce(EXCLUDED.owner_user_id, tenants.owner_user_id), updated_at = now()",
        tenant_id,
        name,
        owner_user_id,
    )


async def upsert_member(
    tx: Connection, tenant_id: UUID, user_id: UUID, email: str, role: str, first_name: str | None
) -> None:
    await tx.execute(
        "INSERT INTO members (tenant_id, user_id, email, role, first_name) VALUES ($1, $2, $3, $4, $5)"
        " ON CONFLICT (tenant_id, user_id) DO UPDATE SET email = EXCLUDED.email, role = EXCLUDED.role,"
        " first_name = coalesce(EXCLUDED.first_name, members.first_name), updated_at = now()",
        tenant_id,
        user_id,
        email,
        role,
        first_name,
    )


async def set_role(tx: Connection, tenant_id: UUID, user_id: UUID, role: str) -> None:
    await tx.execute(
        "UPDATE members SET role = $3, updated_at = now() WHERE tenant_id = $1 AND user_id = $2",
        tenant_id,
        user_id,
        role,
    )


async def set_email(tx: Connection, tenant_id: UUID, user_id: UUID, email: str) -> None:
    await tx.execute(
        "UPDATE members SET email = $3, updated_at = now() WHERE tenant_id = $1 AND user_id = $2",
        tenant_id,
        user_id,
        email,
    )


async def remove_member(tx: Connection, tenant_id: UUID, user_id: UUID) -> None:
    await tx.execute("DELETE FROM members WHERE tenant_id = $1 AND user_id = $2", tenant_id, user_id)


async def tenant_name(tx: Connection, tenant_id: UUID) -> str:
    name = await tx.fetchval("SELECT name FROM tenants WHERE tenant_id = $1", tenant_id)
    return str(name) if name else ""


async def member(tx: Connection, tenant_id: UUID, user_id: UUID) -> Contact | None:
    row = await tx.fetchrow(
        "SELECT user_id, email, role, first_name FROM members WHERE tenant_id = $1 AND user_id = $2",
        tenant_id,
        user_id,
    )
    return Contact(**dict(row)) if row else None


async def admins(tx: Connection, tenant_id: UUID) -> list[Contact]:
    """Owner first, then admins: who hears about billing and broken webhooks."""
    rows = await tx.fetch(
        "SELECT user_id, email, role, first_name FROM members"
        " WHERE tenant_id = $1 AND role IN ('owner', 'admin') ORDER BY role = 'owner' DESC, email",
        tenant_id,
    )
    return [Contact(**dict(r)) for r in rows]
