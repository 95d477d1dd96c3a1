"""Identity keeps the tenant's plan from billing's events and keys' last use from usage's."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from shared import events
from shared.events import ApiKeysUsed, SubscriptionActivated, SubscriptionCanceled, SubscriptionChanged
from tests.identity.conftest import Account, Identity, claims_of


def _publish(identity: Identity, stream: str, event: events.Event[Any]) -> None:
    """What the billing/usage outbox relay does."""
    identity.redis.xadd(stream, {"type": event.type, "event": events.encode(event)})


def _wait_for(check: Any, what: str, timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _plan(identity: Identity, owner: Account) -> str:
    plan: str = identity.get("/tenant", owner.headers).json()["plan"]
    return plan


def test_subscription_events_set_the_plan(identity: Identity, owner: Account) -> None:
    tenant = UUID(owner.tenant_id)
    start = datetime.now(UTC)
    activated = events.new_event(
        SubscriptionActivated(subscription_id="sub_1", plan="professional", status="active"),
        tenant_id=tenant,
        correlation_id="corr-billing-activate-1",
    )
    _publish(identity, events.BILLING_STREAM, activated)
    _wait_for(lambda: _plan(identity, owner) == "professional", "the upgrade")
    changed = identity.event("identity.tenant.plan_changed", new_plan="professional")
    assert (changed.data.old_plan, str(changed.tenant_id)) == ("free", owner.tenant_id)
    assert changed.correlation_id == "corr-billing-activate-1"
    # The plan claim follows on the next refresh, and the seats with it.
    fresh = identity.post("/auth/refresh", {"refresh_token": owner.refresh_token}).json()
    assert claims_of(fresh["access_token"])["plan"] == "professional"
    assert identity.get("/tenant", owner.headers).json()["seats"]["limit"] == 20

    # An older event arriving late changes nothing.
    stale = events.Event(
        id=events.uuid7(),
        type=SubscriptionChanged.TYPE,
        version=1,
        occurred_at=start - timedelta(minutes=5),
        tenant_id=tenant,
        actor=events.SYSTEM,
        data=SubscriptionChanged(subscription_id="sub_1", plan="starter", status="active"),
    )
    canceled = events.new_event(
        SubscriptionCanceled(subscription_id="sub_1", plan="professional", status="canceled"),
        tenant_id=tenant,
    )
    _publish(identity, events.BILLING_STREAM, stale)
    _publish(identity, events.BILLING_STREAM, canceled)
    _wait_for(lambda: _plan(identity, owner) == "free", "the cancellation")
    plans = [(e.data.old_plan, e.data.new_plan) for e in identity.events("identity.tenant.plan_changed")]
    assert ("professional", "starter") not in plans
    assert ("professional", "free") in plans
    # Delivered again (at-least-once): no second change.
    _publish(identity, events.BILLING_STREAM, canceled)
    marker = events.new_event(
        SubscriptionChanged(subscription_id="sub_1", plan="starter", status="active"), tenant_id=tenant
    )
    _publish(identity, events.BILLING_STREAM, marker)
    _wait_for(lambda: _plan(identity, owner) == "starter", "the marker event")
    mine = [e for e in identity.events("identity.tenant.plan_changed") if str(e.tenant_id) == owner.tenant_id]
    assert [(e.data.old_plan, e.data.new_plan) for e in mine] == [
        ("free", "professional"),
        ("professional", "free"),
        ("free", "starter"),
    ]


def test_usage_reports_set_last_used(identity: Identity, owner: Account) -> None:
    key = identity.post("/api-keys", {"name": "used"}, owner.headers).json()
    assert key["last_used_at"] is None
    later = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    earlier = later - timedelta(hours=1)
    for at in (later, earlier):  # out of order: the latest time wins
        used = events.new_event(ApiKeysUsed(last_used={key["id"]: at, "not-a-uuid": at}), tenant_id=None)
        _publish(identity, events.USAGE_STREAM, used)

    def seen() -> str | None:
        (item,) = identity.get("/api-keys", owner.headers).json()
        value: str | None = item["last_used_at"]
        return value

    _wait_for(lambda: seen() is not None, "last_used_at")
    _wait_for(
        lambda: (
            identity.sql(
                "SELECT count(*) AS n FROM identity.inbox WHERE consumer_group = 'identity' AND type = $1",
                ApiKeysUsed.TYPE,
            )[0]["n"]
            >= 2
        ),
        "both reports handled",
    )
    assert datetime.fromisoformat(seen() or "") == later
