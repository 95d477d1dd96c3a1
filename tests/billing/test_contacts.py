"""The Stripe customer is named after the tenant and bills its owner: both from identity's events."""

from __future__ import annotations

import uuid
from typing import Any

from asyncpg import Connection
from redis.asyncio import Redis

from shared.events import IDENTITY_STREAM, Event, TenantCreated, UserRegistered, encode, new_event
from tests.billing.conftest import Billing, Tenant, eventually


async def _publish(bus: Redis, *events: Event[Any]) -> None:
    """As identity's outbox relay publishes."""
    for event in events:
        await bus.xadd(IDENTITY_STREAM, {"type": event.type, "event": encode(event)})


async def test_customer_gets_the_owners_email_from_identity_events(
    billing: Billing, tenant: Tenant, bus: Redis, db: Connection
) -> None:
    owner = f"owner-{uuid.uuid4().hex[:8]}@example.test"
    admin = uuid.uuid4()
    await _publish(
        bus,
        new_event(
            TenantCreated(name="Lattice Labs", plan="free", owner_user_id=tenant.user_id), tenant_id=tenant.id
        ),
        new_event(
            UserRegistered(user_id=admin, email="admin@example.test", role="admin"), tenant_id=tenant.id
        ),
        new_event(
            UserRegistered(user_id=tenant.user_id, email=owner, role="owner", tenant_name="Lattice Labs"),
            tenant_id=tenant.id,
        ),
    )

    async def projected() -> bool:
        count = await db.fetchval("SELECT count(*) FROM tenant_users WHERE tenant_id = $1", tenant.id)
        return bool(count == 2)

    await eventually(projected, "billing's projection of identity's events")

    session = billing.post("/billing/checkout", tenant, json={"plan": "starter"}).json()
    customer = billing.sdk.v1.customers.retrieve(
        str(billing.sdk.v1.checkout.sessions.retrieve(session["session_id"]).customer)
    )
    assert customer.email == owner
    assert customer.name == "Lattice Labs"
    assert customer.metadata["tenant_id"] == str(tenant.id)
