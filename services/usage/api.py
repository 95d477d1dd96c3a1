"""HTTP controllers of the usage service."""

from __future__ import annotations

from uuid import UUID

from litestar import Controller, get

from services.usage import repository
from services.usage.repository import AuditEntry
from shared.db import Connection
from shared.errors import NotFound


class PlatformController(Controller):
    path = "/internal"
    tags = ["platform"]

    @get("/audit/{event_id:uuid}")
    async def audit_entry(self, event_id: UUID, tx: Connection) -> AuditEntry:
        entry = await repository.get_audit(tx, event_id)
        if entry is None:
            raise NotFound(f"no audit entry for event {event_id}")
        return entry
