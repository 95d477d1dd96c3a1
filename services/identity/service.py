"""Domain logic of the identity service (no HTTP, no SQL)."""

from __future__ import annotations

from uuid import UUID

from shared.bus import add_event
from shared.db import Connection
from shared.events import IdentityPing, new_event


async def ping(tx: Connection, note: str, correlation_id: str | None) -> UUID:
    """Publish a ping through the outbox: proves this service's writes reach the bus."""
    event = new_event(IdentityPing(note=note), tenant_id=None, correlation_id=correlation_id)
    await add_event(tx, event)
    return event.id
