"""Event handlers of the usage service."""

from __future__ import annotations

from typing import Any

from services.usage import repository
from shared.bus import Registry
from shared.db import Connection
from shared.events import Event

audit = Registry[Any]()


@audit.on_any
async def record(tx: Connection, event: Event[Any], deps: Any) -> None:
    """Every domain event becomes one audit row (the event id keeps it one)."""
    await repository.insert_audit(tx, event)
