"""Event handlers of the usage service."""

from __future__ import annotations

from typing import Any

from services.usage import service
from shared.bus import Registry
from shared.db import Connection
from shared.events import Event, RequestBatch

audit = Registry[Any]()


@audit.on_any
async def record(tx: Connection, event: Event[Any], deps: Any) -> None:
    """Every domain event becomes one audit row (the event id keeps it one)."""
    await service.record_audit(tx, event)


class Pending:
    """The fresh request batches of the transaction being applied (see ingest.IngestConsumer)."""

    def __init__(self) -> None:
        self.batches: list[Event[RequestBatch]] = []


requests = Registry[Pending]()


@requests.on(RequestBatch)
async def collect(tx: Connection, event: Event[Any], deps: Pending) -> None:
    """Collected, not stored one by one: the whole read is stored with one COPY."""
    deps.batches.append(event)
