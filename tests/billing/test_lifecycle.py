"""After the checkout: cancel at period end, a failed renewal (dunning), a trial that ends."""

from __future__ import annotations

from datetime import datetime

from asyncpg import Connection
from redis.asyncio import Redis

from tests.billing.conftest import Billing, Tenant, outbox_count, settled, stream_events, wait_for


async def test_cancel_at_period_end_then_the_period_ends(
    billing: Billing, tenant: Tenant, db: Connection, bus: Redis
) -> None:
    paid = billing.subscribe(tenant, "starter")
    resp = billing.post("/billing/subscription/cancel", tenant)
    assert resp.status_code == 200, resp.text
    view = resp.json()
    assert (view["status"], view["plan"], view["cancel_at_period_end"]) == ("active", "starter", True)
    assert billing.sdk.v1.subscriptions.retrieve(paid["subscription"]).cancel_at_period_end is True
    again = billing.post("/billing/subscription/cancel", tenant)
    assert (again.status_code, again.json()["code"]) == (409, "subscription_already_canceled")

    await settled(db)
    changed = await stream_events(bus, tenant, "billing.subscription.changed")
    assert len(changed) == 1
    assert changed[0].data.cancel_at_period_end is True
    assert changed[0].data.plan == "starter"
    assert changed[0].actor.kind == "user"
    assert changed[0].actor.id == str(tenant.user_id)

    # Stripe's own customer.subscription.updated for the same change arrives later: nothing new.
    listed = billing.sdk.v1.events.list({"type": "customer.subscription.updated", "limit": 100})
    updates = [e.id for e in listed.auto_paging_iter() if e.data.object["id"] == paid["subscription"]]
    assert len(updates) == 1
    billing.deliver(updates[0])
    await settled(db)
    assert await outbox_count(db, tenant, "billing.subscription.changed") == 1

    billing.helper(f"subscriptions/{paid['subscription']}/renew")  # the period ends: Stripe deletes it
    ended = wait_for(lambda: (v := billing.subscription(tenant))["status"] == "canceled" and v, "canceled")
    assert ended["plan"] == "free"
    await settled(db)
    canceled = await stream_events(bus, tenant, "billing.subscription.canceled")
    assert [(e.data.status, e.data.plan) for e in canceled] == [("canceled", "starter")]
    gone = billing.post("/billing/subscription/cancel", tenant)
    assert (gone.status_code, gone.json()["code"]) == (404, "no_subscription")
    # Free again: a new checkout is allowed.
    assert billing.post("/billing/checkout", tenant, json={"plan": "starter"}).status_code == 201


async def test_failed_renewal_sends_a_dunning_event(
    billing: Billing, tenant: Tenant, db: Connection, bus: Redis
) -> None:
    paid = billing.subscribe(tenant, "starter")
    renewal = billing.helper(f"subscriptions/{paid['subscription']}/renew", outcome="failed")
    assert renewal["status"] == "past_due"
    view = wait_for(lambda: (v := billing.subscription(tenant))["status"] == "past_due" and v, "past_due")
    assert view["plan"] == "starter"  # Stripe keeps retrying; the plan stays meanwhile

    await settled(db)
    failed = await stream_events(bus, tenant, "billing.payment.failed")
    assert len(failed) == 1
    assert failed[0].data.amount_cents == 2900
    assert failed[0].data.attempt_count == 1
    assert isinstance(failed[0].data.next_attempt_at, datetime)
    changed = await stream_events(bus, tenant, "billing.subscription.changed")
    assert [e.data.status for e in changed] == ["past_due"]

    invoices = {i["status"]: i for i in billing.get("/billing/invoices", tenant).json()["data"]}
    assert sorted(invoices) == ["open", "paid"]  # (both made within a second: no order to test)
    assert invoices["open"]["attempt_count"] == 1
    assert invoices["open"]["amount_due"] == 2900 and invoices["open"]["amount_paid"] == 0

    # The next attempt succeeds: paid and active again, announced once.
    billing.helper(f"subscriptions/{paid['subscription']}/renew")
    wait_for(lambda: billing.subscription(tenant)["status"] == "active", "active again")
    await settled(db)
    assert await outbox_count(db, tenant, "billing.payment.failed") == 1
    assert await outbox_count(db, tenant, "billing.payment.succeeded") == 2

    first = billing.get("/billing/invoices", tenant, limit=2).json()
    assert (len(first["data"]), first["has_more"]) == (2, True)
    rest = billing.get("/billing/invoices", tenant, limit=2, starting_after=first["data"][-1]["id"]).json()
    assert (len(rest["data"]), rest["has_more"]) == (1, False)
    assert len({i["id"] for i in first["data"] + rest["data"]}) == 3
    too_many = billing.get("/billing/invoices", tenant, limit=101)
    assert (too_many.status_code, too_many.json()["code"]) == (422, "invalid_input")


async def test_trial_ending_is_announced_once(
    billing: Billing, tenant: Tenant, db: Connection, bus: Redis
) -> None:
    # Billing's checkout makes the tenant's Stripe customer; this session (as a dashboard or a
    # promotion would) starts that customer on a 14-day trial.
    opened = billing.post("/billing/checkout", tenant, json={"plan": "starter"}).json()
    customer = billing.sdk.v1.checkout.sessions.retrieve(opened["session_id"]).customer
    price = billing.sdk.v1.prices.list({"lookup_keys": ["catalytic_starter_monthly"]}).data[0].id
    trial = billing.sdk.v1.checkout.sessions.create(
        {
            "mode": "subscription",
            "customer": str(customer),
            "line_items": [{"price": price, "quantity": 1}],
            "success_url": "https://example.test/ok",
            "subscription_data": {"trial_period_days": 14, "metadata": {"tenant_id": str(tenant.id)}},
        }
    )
    done = billing.complete(trial.id)
    view = wait_for(lambda: (v := billing.subscription(tenant))["status"] == "trialing" and v, "trialing")
    assert view["plan"] == "starter"
    assert view["trial_end"]

    ending = billing.helper(f"subscriptions/{done['subscription']}/trial_will_end")
    billing.deliver(ending["fake_events"][0], times=2)
    await settled(db)
    told = await stream_events(bus, tenant, "billing.trial.ending")
    assert len(told) == 1
    assert told[0].data.subscription_id == done["subscription"]
    assert told[0].data.trial_end.isoformat().startswith(view["trial_end"][:19])
    activated = await stream_events(bus, tenant, "billing.subscription.activated")
    assert [e.data.status for e in activated] == ["trialing"]
    # A trialing tenant is subscribed: the opened session is no longer handed out.
    refused = billing.post("/billing/checkout", tenant, json={"plan": "starter"})
    assert refused.json()["code"] == "subscription_exists"
