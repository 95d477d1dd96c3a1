"""Every SQL statement of the usage service."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import msgspec

from shared.db import Connection
from shared.events import Event


class AuditEntry(msgspec.Struct, frozen=True):
    id: UUID
    tenant_id: UUID | None
    action: str
    actor_kind: str
    actor_id: str | None


async def insert_audit(tx: Connection, event: Event[Any]) -> None:
    await tx.execute(
        "INSERT INTO audit_logs (id, tenant_id, actor_kind, actor_id, action, correlation_id, source_ip,"
        " data, occurred_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (id) DO NOTHING",
        event.id,
        event.tenant_id,
        event.actor.kind,
        event.actor.id,
        event.type,
        event.correlation_id,
        event.actor.ip,
        msgspec.to_builtins(event.data),
        event.occurred_at,
    )


async def get_audit(tx: Connection, event_id: UUID) -> AuditEntry | None:
    row = await tx.fetchrow(
        "SELECT id, tenant_id, action, actor_kind, actor_id FROM audit_logs WHERE id = $1", event_id
    )
    return AuditEntry(**dict(row)) if row else None
