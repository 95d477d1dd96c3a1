"""HTTP controllers of the billing service."""

from __future__ import annotations

import uuid
from typing import Annotated, Any
from uuid import UUID

import msgspec
from litestar import Controller, Request, get, post
from litestar.params import Parameter

from services.billing import service
from services.billing.errors import TenantRequired
from services.billing.models import (
    CheckoutSession,
    InvoicePage,
    PlanInfo,
    PortalSession,
    SubscriptionView,
    WebhookReceipt,
)
from services.billing.runtime import Billing
from shared import context
from shared.auth.assertion import Caller
from shared.db import Connection
from shared.events import Actor


class CheckoutIn(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    plan: Annotated[str, msgspec.Meta(min_length=1, max_length=40)]


def _tenant(caller: Caller) -> UUID:
    if caller.tenant_id is None:
        raise TenantRequired()
    return caller.tenant_id


def _actor(caller: Caller) -> Actor:
    if caller.kind == "api_key":
        return Actor(kind="api_key", id=str(caller.api_key_id), ip=caller.ip)
    return Actor(kind="user", id=str(caller.user_id) if caller.user_id else None, ip=caller.ip)


def _request_id() -> str:
    return context.request_id.get() or uuid.uuid4().hex


class BillingController(Controller):
    """Plans are public; everything else is the tenant's owner's or admins'."""

    path = "/billing"
    tags = ["billing"]

    @get("/plans", sync_to_thread=False)
    def plans(self, caller: Caller, billing: Billing) -> list[PlanInfo]:
        return service.plans(billing.settings)

    @post("/checkout", status_code=201)
    async def checkout(
        self, data: CheckoutIn, admin: Caller, tx: Connection, billing: Billing
    ) -> CheckoutSession:
        return await service.checkout(tx, billing, _tenant(admin), data.plan)

    @post("/portal", status_code=201)
    async def portal(self, admin: Caller, tx: Connection, billing: Billing) -> PortalSession:
        return await service.portal(tx, billing, _tenant(admin), _request_id())

    @get("/subscription")
    async def subscription(self, admin: Caller, tx: Connection) -> SubscriptionView:
        return await service.subscription(tx, _tenant(admin))

    @post("/subscription/cancel", status_code=200)
    async def cancel(self, admin: Caller, tx: Connection, billing: Billing) -> SubscriptionView:
        return await service.cancel(tx, billing, _tenant(admin), _actor(admin), _request_id())

    @get("/invoices")
    async def invoices(
        self,
        admin: Caller,
        tx: Connection,
        limit: Annotated[int, Parameter(ge=1, le=100)] = 20,
        starting_after: Annotated[str | None, Parameter(max_length=100)] = None,
    ) -> InvoicePage:
        return await service.invoices(tx, _tenant(admin), limit, starting_after)


class WebhookController(Controller):
    """Stripe's calls (through the gateway, as an anonymous caller): verified, stored, answered."""

    path = "/webhooks"
    tags = ["webhooks"]

    @post("/stripe", status_code=200)
    async def stripe(
        self, request: Request[Any, Any, Any], caller: Caller, db: Connection, billing: Billing
    ) -> WebhookReceipt:
        signature = request.headers.get("stripe-signature")
        return await service.receive(db, billing.settings, await request.body(), signature)
