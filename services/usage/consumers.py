"""Event handlers of the usage service."""

from __future__ import annotations

from typing import Any

from services.usage import service
from shared.bus import Registry
from shared.db import Connection
from shared.events import Event, RequestBatch

audit = Registry[Any]()


@audit.on_any_batch
async def record(tx: Connection, batch: list[Event[Any]], deps: Any) -> None:
    """Every domain event becomes one audit row (the event id keeps it one), one statement a batch."""
    await service.record_audit(tx, batch)


requests = Registry[Any]()


@requests.on_batch(RequestBatch)
async def ingest(tx: Connection, batch: list[Event[Any]], deps: Any) -> None:
    """The fresh request batches of one read, stored with one COPY and one upsert per rollup."""
    await service.ingest(tx, batch)
