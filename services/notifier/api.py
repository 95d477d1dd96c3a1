"""HTTP controllers of the notifier: tenant webhook endpoints, their delivery log, the email log."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from arq.connections import ArqRedis
from litestar import Controller, delete, get, patch, post
from litestar.di import Provide
from litestar.params import Parameter

from services.notifier import jobs
from services.notifier.deps import Deps
from services.notifier.mail import service as mail
from services.notifier.repository.emails import EmailView
from services.notifier.repository.webhooks import Delivery, Endpoint
from services.notifier.webhooks import service
from services.notifier.webhooks.service import (
    DeliveryDetail,
    EndpointCreated,
    EndpointIn,
    EndpointPatch,
    RetryQueued,
    RotateIn,
    SecretOut,
)
from shared.auth.assertion import Caller
from shared.db import Connection
from shared.http.app import Resources

Limit = Annotated[int, Parameter(ge=1, le=200)]


def _deps(resources: Resources) -> Deps:
    deps: Deps = resources.extra["deps"]
    return deps


def _queue(resources: Resources) -> ArqRedis:
    queue: ArqRedis = resources.extra["queue"]
    return queue


DEPENDENCIES = {
    "deps": Provide(_deps, sync_to_thread=False),
    "queue": Provide(_queue, sync_to_thread=False),
}


class WebhookEndpoints(Controller):
    path = "/webhooks"
    tags = ["webhooks"]

    @get("/event-types")
    async def event_types(self, admin: Caller) -> list[str]:
        return sorted(t for t in service.deliverable_types() if not t.endswith(".ping"))

    @post("/endpoints", status_code=201)
    async def create(self, admin: Caller, tx: Connection, deps: Deps, data: EndpointIn) -> EndpointCreated:
        return await service.create_endpoint(tx, deps, admin, data)

    @get("/endpoints")
    async def list_all(self, admin: Caller, tx: Connection) -> list[Endpoint]:
        return await service.list_endpoints(tx, admin)

    @get("/endpoints/{endpoint_id:uuid}")
    async def one(self, admin: Caller, tx: Connection, endpoint_id: UUID) -> Endpoint:
        return await service.get_endpoint(tx, admin, endpoint_id)

    @patch("/endpoints/{endpoint_id:uuid}")
    async def change(
        self, admin: Caller, tx: Connection, deps: Deps, endpoint_id: UUID, data: EndpointPatch
    ) -> Endpoint:
        return await service.update_endpoint(tx, deps, admin, endpoint_id, data)

    @delete("/endpoints/{endpoint_id:uuid}", status_code=204)
    async def remove(self, admin: Caller, tx: Connection, endpoint_id: UUID) -> None:
        await service.delete_endpoint(tx, admin, endpoint_id)

    @post("/endpoints/{endpoint_id:uuid}/secret/rotate", status_code=200)
    async def rotate(
        self, admin: Caller, tx: Connection, deps: Deps, endpoint_id: UUID, data: RotateIn | None = None
    ) -> SecretOut:
        return await service.rotate_secret(tx, deps, admin, endpoint_id, data or RotateIn())

    @get("/endpoints/{endpoint_id:uuid}/deliveries")
    async def deliveries(
        self,
        admin: Caller,
        tx: Connection,
        endpoint_id: UUID,
        limit: Limit = 50,
        status: Literal["pending", "succeeded", "failed"] | None = None,
        before: datetime | None = None,
    ) -> list[Delivery]:
        return await service.list_deliveries(tx, admin, endpoint_id, limit, status, before)

    @get("/endpoints/{endpoint_id:uuid}/deliveries/{delivery_id:uuid}")
    async def delivery(
        self, admin: Caller, tx: Connection, endpoint_id: UUID, delivery_id: UUID
    ) -> DeliveryDetail:
        return await service.get_delivery(tx, admin, endpoint_id, delivery_id)

    @post("/endpoints/{endpoint_id:uuid}/deliveries/{delivery_id:uuid}/retry", status_code=202)
    async def retry(
        self, admin: Caller, tx: Connection, queue: ArqRedis, endpoint_id: UUID, delivery_id: UUID
    ) -> RetryQueued:
        found = await service.retriable(tx, admin, endpoint_id, delivery_id)
        return RetryQueued(delivery_id=found.id, job_id=await jobs.enqueue_replay(queue, found.id))


class EmailLog(Controller):
    path = "/emails"
    tags = ["email"]

    @get("/")
    async def recent(
        self,
        admin: Caller,
        tx: Connection,
        limit: Limit = 50,
        status: Literal["queued", "sent", "failed", "suppressed"] | None = None,
    ) -> list[EmailView]:
        return await mail.email_log(tx, admin, limit, status)
