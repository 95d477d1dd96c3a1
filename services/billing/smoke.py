"""`POST /internal/ping`: the platform's end-to-end check that billing's writes reach the bus."""

from __future__ import annotations

from uuid import UUID

import msgspec
from litestar import Controller, post

from services.billing.errors import ServiceCallerRequired
from shared import context
from shared.auth.assertion import Caller
from shared.bus import add_event
from shared.db import Connection
from shared.events import BillingPing, new_event


class PingIn(msgspec.Struct, frozen=True):
    note: str = msgspec.field(default="")


class PingOut(msgspec.Struct, frozen=True):
    event_id: UUID


class PlatformController(Controller):
    path = "/internal"
    tags = ["platform"]

    @post("/ping", status_code=202)
    async def ping(self, data: PingIn, caller: Caller, tx: Connection) -> PingOut:
        # It writes to the outbox (and so to the audit log): only the platform's own checks may.
        if caller.kind != "service":
            raise ServiceCallerRequired()
        event = new_event(
            BillingPing(note=data.note[:200]), tenant_id=None, correlation_id=context.correlation_id.get()
        )
        await add_event(tx, event)
        return PingOut(event.id)
