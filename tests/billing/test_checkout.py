"""Plans, checkout and the paid flow: checkout -> payment in the fake Stripe -> signed webhooks ->
subscription active -> billing.subscription.activated on the stream."""

from __future__ import annotations

import httpx
import pytest
from asyncpg import Connection
from redis.asyncio import Redis

from tests.billing.conftest import (
    Billing,
    Tenant,
    eventually,
    outbox_count,
    settled,
    stream_events,
    wait_for,
)
from tests.support import anonymous


def test_plans_are_public_and_carry_limits(billing: Billing) -> None:
    resp = httpx.get(f"{billing.url}/billing/plans", headers=anonymous("billing"))
    assert resp.status_code == 200, resp.text
    plans = {p["id"]: p for p in resp.json()}
    assert list(plans) == ["free", "starter", "professional", "enterprise"]
    assert [plans[p]["price_cents"] for p in plans] == [0, 2900, 9900, 29900]
    assert plans["starter"]["calls_per_month"] == 50_000
    assert plans["starter"]["purchasable"] is True
    assert plans["free"]["purchasable"] is False
    missing = httpx.get(f"{billing.url}/billing/plans")
    assert missing.status_code == 401
    assert missing.headers["content-type"].startswith("application/problem+json")


async def test_checkout_payment_webhook_activates(
    billing: Billing, tenant: Tenant, db: Connection, bus: Redis
) -> None:
    resp = billing.post("/billing/checkout", tenant, json={"plan": "professional"})
    assert resp.status_code == 201, resp.text
    session_id, url = resp.json()["session_id"], resp.json()["url"]
    assert session_id.startswith("cs_") and url

    # What billing asked Stripe for, read back through the official SDK.
    session = billing.sdk.v1.checkout.sessions.retrieve(session_id)
    assert session.mode == "subscription" and session.status == "open"
    assert session.client_reference_id == str(tenant.id)
    customer = billing.sdk.v1.customers.retrieve(str(session.customer))
    assert customer.metadata["tenant_id"] == str(tenant.id)

    before = billing.subscription(tenant)
    assert (before["plan"], before["status"], before["subscription_id"]) == ("free", "none", None)

    paid = billing.complete(session_id)  # the customer pays; Stripe sends the signed webhooks
    kinds = {d["type"] for d in paid["fake_deliveries"]}
    assert {"checkout.session.completed", "customer.subscription.created", "invoice.paid"} <= kinds

    view = wait_for(lambda: (v := billing.subscription(tenant))["status"] == "active" and v, "active")
    assert view["plan"] == "professional"
    assert view["subscription_id"] == paid["subscription"]
    assert view["cancel_at_period_end"] is False
    assert view["current_period_end"]

    await settled(db)
    events = await eventually(
        lambda: stream_events(bus, tenant, "billing.subscription.activated"), "activated on the stream"
    )
    assert len(events) == 1
    assert events[0].data.plan == "professional"
    assert events[0].data.status == "active"
    assert events[0].data.subscription_id == paid["subscription"]
    assert events[0].actor.kind == "stripe"
    assert await outbox_count(db, tenant, "billing.subscription.activated") == 1
    assert await outbox_count(db, tenant, "billing.checkout.completed") == 1
    # invoice.paid and invoice.payment_succeeded are one payment: announced once.
    assert await outbox_count(db, tenant, "billing.payment.succeeded") == 1
    completed = await stream_events(bus, tenant, "billing.checkout.completed")
    assert [e.data.session_id for e in completed] == [session_id]

    invoices = billing.get("/billing/invoices", tenant).json()
    assert invoices["has_more"] is False
    assert [(i["status"], i["amount_paid"], i["currency"]) for i in invoices["data"]] == [
        ("paid", 9900, "usd")
    ]


def test_checkout_reuses_the_open_session_and_the_customer(billing: Billing, tenant: Tenant) -> None:
    first = billing.post("/billing/checkout", tenant, json={"plan": "starter"}).json()
    again = billing.post("/billing/checkout", tenant, json={"plan": "starter"}).json()
    assert again == first  # a double click gets the same session
    other = billing.post("/billing/checkout", tenant, json={"plan": "enterprise"})
    assert other.status_code == 201
    assert other.json()["session_id"] != first["session_id"]
    customers = {
        billing.sdk.v1.checkout.sessions.retrieve(s).customer
        for s in (first["session_id"], other.json()["session_id"])
    }
    assert len(customers) == 1  # one Stripe customer per tenant
    portal = billing.post("/billing/portal", tenant)
    assert portal.status_code == 201, portal.text
    assert portal.json()["url"].startswith(billing.api_base)


def test_checkout_refused_while_subscribed(billing: Billing, tenant: Tenant) -> None:
    billing.subscribe(tenant, "starter")
    resp = billing.post("/billing/checkout", tenant, json={"plan": "professional"})
    assert resp.status_code == 409
    assert resp.json()["code"] == "subscription_exists"


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"plan": "platinum"}, 422, "unknown_plan"),
        ({"plan": "free"}, 422, "plan_not_purchasable"),
        ({"plan": ""}, 422, "invalid_input"),
        ({"plan": "starter", "coupon": "x"}, 422, "invalid_input"),
        ({}, 422, "invalid_input"),
    ],
)
async def test_checkout_bad_input(
    billing: Billing, tenant: Tenant, db: Connection, body: dict[str, str], status: int, code: str
) -> None:
    resp = billing.post("/billing/checkout", tenant, json=body)
    assert resp.status_code == status, resp.text
    assert resp.json()["code"] == code
    assert resp.headers["content-type"].startswith("application/problem+json")
    assert await db.fetchval("SELECT count(*) FROM checkout_sessions WHERE tenant_id = $1", tenant.id) == 0
    assert await db.fetchval("SELECT count(*) FROM customers WHERE tenant_id = $1", tenant.id) == 0


def test_malformed_checkout_body(billing: Billing, tenant: Tenant) -> None:
    resp = httpx.post(
        f"{billing.url}/billing/checkout",
        content=b"{nope",
        headers={**tenant.headers(), "Content-Type": "application/json"},
    )
    assert resp.status_code == 400
    assert resp.json()["code"] == "malformed_body"
