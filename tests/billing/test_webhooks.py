"""The Stripe webhook: verified on the raw body, stored once, applied by the worker; duplicates and
out-of-order deliveries converge to Stripe's truth with each transition announced once."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import httpx
import pytest
from asyncpg import Connection

from shared.devstack.fakestripe.signing import sign
from tests.billing.conftest import Billing, Tenant, outbox_count, settled, wait_for


def _event(kind: str = "customer.tax_id.created", **obj: Any) -> tuple[str, bytes]:
    event_id = f"evt_test{uuid.uuid4().hex[:16]}"
    body = {
        "id": event_id,
        "object": "event",
        "type": kind,
        "created": int(time.time()),
        "livemode": False,
        "data": {"object": {"id": f"txi_{uuid.uuid4().hex[:10]}", "object": "tax_id", **obj}},
    }
    return event_id, json.dumps(body).encode()


async def _stored(db: Connection, event_id: str) -> int:
    return int(await db.fetchval("SELECT count(*) FROM stripe_events WHERE id = $1", event_id))


async def test_bad_signature_is_refused_and_nothing_stored(billing: Billing, db: Connection) -> None:
    event_id, body = _event()
    wrong = billing.webhook(body, secret="whsec_not_ours")
    assert wrong.status_code == 400
    assert wrong.headers["content-type"].startswith("application/problem+json")
    assert wrong.json()["code"] == "invalid_signature"
    tampered = billing.webhook(body + b" ", signature=sign(body, billing.secrets[0]))
    assert tampered.json()["code"] == "invalid_signature"
    missing = billing.webhook(body, signature="")
    assert (missing.status_code, missing.json()["code"]) == (400, "invalid_signature")
    garbage = billing.webhook(body, signature="t=abc,v1=zz")
    assert (garbage.status_code, garbage.json()["code"]) == (400, "invalid_signature")
    assert await _stored(db, event_id) == 0
    metrics = httpx.get(f"{billing.url}/metrics").text
    assert 'billing_stripe_webhooks_total{result="invalid_signature"}' in metrics
    # Nothing was lost: the genuine delivery that follows is taken.
    assert billing.webhook(body).status_code == 200
    assert await _stored(db, event_id) == 1


async def test_old_timestamp_is_refused(billing: Billing, db: Connection) -> None:
    event_id, body = _event()
    old = billing.webhook(body, timestamp=int(time.time()) - 301)
    assert old.status_code == 400
    assert old.json()["code"] == "signature_expired"
    assert await _stored(db, event_id) == 0
    fresh = billing.webhook(body, timestamp=int(time.time()) - 250)  # inside the 300 s tolerance
    assert fresh.status_code == 200
    assert await _stored(db, event_id) == 1


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"[]",
        b'{"id": "evt_x"}',
        b'{"id": 5, "type": "invoice.paid", "created": 1}',
        b"\xff\xfe",
    ],
)
async def test_malformed_signed_body_is_refused(billing: Billing, db: Connection, body: bytes) -> None:
    before = await db.fetchval("SELECT count(*) FROM stripe_events")
    resp = billing.webhook(body)
    assert resp.status_code == 400, resp.text
    assert resp.json()["code"] in ("malformed_event", "invalid_signature")  # non-UTF-8 cannot be signed
    assert await db.fetchval("SELECT count(*) FROM stripe_events") == before


async def test_unknown_event_type_is_acknowledged_and_ignored(billing: Billing, db: Connection) -> None:
    event_id, body = _event("customer.tax_id.created")
    resp = billing.webhook(body)
    assert resp.status_code == 200
    assert resp.json() == {"received": True, "event_id": event_id, "duplicate": False}
    await settled(db)
    row = await db.fetchrow("SELECT status, last_error, attempts FROM stripe_events WHERE id = $1", event_id)
    assert row["status"] == "ignored"
    assert "not handled" in row["last_error"]
    assert row["attempts"] == 1


async def test_rotated_secrets_are_all_accepted(billing: Billing, db: Connection) -> None:
    old_id, old_body = _event()
    new_id, new_body = _event()
    assert billing.webhook(old_body, secret=billing.secrets[0]).status_code == 200
    assert billing.webhook(new_body, secret=billing.secrets[1]).status_code == 200
    # Stripe sends one v1 per active secret while rolling; any match is enough.
    both_id, both_body = _event()
    t = int(time.time())
    good = sign(both_body, billing.secrets[1], t).split("v1=")[1]
    header = f"t={t},v1={'0' * 64},v1={good}"
    assert billing.webhook(both_body, signature=header).status_code == 200
    for event_id in (old_id, new_id, both_id):
        assert await _stored(db, event_id) == 1


def test_webhook_needs_the_gateways_assertion(billing: Billing) -> None:
    _, body = _event()
    resp = httpx.post(
        f"{billing.url}/webhooks/stripe",
        content=body,
        headers={"Stripe-Signature": sign(body, billing.secrets[0])},
    )
    assert resp.status_code == 401


async def test_duplicate_deliveries_apply_once(billing: Billing, tenant: Tenant, db: Connection) -> None:
    session = billing.post("/billing/checkout", tenant, json={"plan": "starter"}).json()
    paid = billing.complete(session["session_id"], deliver=False)
    events = paid["fake_events"]
    assert len(events) >= 4
    for event_id in events:
        answers = [r.json()["duplicate"] for r in billing.deliver(event_id, times=3)]
        assert answers == [False, True, True]
    wait_for(lambda: billing.subscription(tenant)["status"] == "active", "active subscription")
    await settled(db)
    assert await db.fetchval("SELECT count(*) FROM stripe_events WHERE id = ANY($1::text[])", events) == len(
        events
    )
    assert await db.fetchval("SELECT count(*) FROM subscriptions WHERE tenant_id = $1", tenant.id) == 1
    assert await outbox_count(db, tenant, "billing.subscription.activated") == 1
    assert await outbox_count(db, tenant, "billing.checkout.completed") == 1
    assert await outbox_count(db, tenant, "billing.payment.succeeded") == 1
    assert await outbox_count(db, tenant, "billing.subscription.changed") == 0


def _lifecycle(billing: Billing, tenant: Tenant, live: bool) -> list[str]:
    """Subscribe, cancel at period end, reach the period end; answer Stripe's events in order.

    `live` delivers each step's events as it happens (and waits for billing to see it), as Stripe
    does; otherwise nothing is delivered yet."""
    session = billing.post("/billing/checkout", tenant, json={"plan": "starter"}).json()
    paid = billing.complete(session["session_id"], deliver=live)
    if live:
        wait_for(lambda: billing.subscription(tenant)["status"] == "active", "active")
    sub_id = paid["subscription"]
    billing.sdk.v1.subscriptions.update(sub_id, {"cancel_at_period_end": True})
    updated = [
        e.id
        for e in billing.sdk.v1.events.list(
            {"type": "customer.subscription.updated", "limit": 100}
        ).auto_paging_iter()
        if e.data.object["id"] == sub_id
    ]
    assert len(updated) == 1
    if live:
        billing.deliver(updated[0])
        wait_for(lambda: billing.subscription(tenant)["cancel_at_period_end"], "cancel at period end")
    ended = billing.helper(f"subscriptions/{sub_id}/renew", deliver=live)
    assert ended["status"] == "canceled"
    return [*paid["fake_events"], *updated, *ended["fake_events"]]


async def test_reverse_order_converges_to_the_same_state(
    billing: Billing, tenant: Tenant, other: Tenant, db: Connection
) -> None:
    _lifecycle(billing, tenant, live=True)
    backward = _lifecycle(billing, other, live=False)
    for event_id in reversed(backward):
        assert billing.deliver(event_id)[0].status_code == 200
    await settled(db)
    ours, theirs = billing.subscription(tenant), billing.subscription(other)
    assert (ours["status"], ours["plan"]) == ("canceled", "free")
    assert (theirs["status"], theirs["plan"]) == (ours["status"], ours["plan"])
    assert theirs["cancel_at_period_end"] == ours["cancel_at_period_end"]
    for t in (tenant, other):
        stripe_sub = billing.sdk.v1.subscriptions.retrieve(billing.subscription(t)["subscription_id"])
        assert stripe_sub.status == "canceled"  # Stripe's truth
        assert await outbox_count(db, t, "billing.checkout.completed") == 1
    # Live, every transition is told once; backwards, the first event applied already reads the
    # final state from Stripe, so the tenant is never shown as active (and nothing is told twice).
    for kind in ("activated", "changed", "canceled"):
        assert await outbox_count(db, tenant, f"billing.subscription.{kind}") == 1
    assert await outbox_count(db, other, "billing.subscription.activated") == await outbox_count(
        db, other, "billing.subscription.canceled"
    )
    assert await outbox_count(db, other, "billing.subscription.activated") <= 1
