"""HTTP controllers of the identity service."""

from __future__ import annotations

from uuid import UUID

import msgspec
from litestar import Controller, post

from services.identity import service
from shared import context
from shared.db import Connection


class PingIn(msgspec.Struct, frozen=True):
    note: str = msgspec.field(default="")


class PingOut(msgspec.Struct, frozen=True):
    event_id: UUID


class PlatformController(Controller):
    path = "/internal"
    tags = ["platform"]

    @post("/ping", status_code=202)
    async def ping(self, data: PingIn, tx: Connection) -> PingOut:
        return PingOut(await service.ping(tx, data.note[:200], context.correlation_id.get()))
