"""The pure parts: settings, which transition is announced, signature checks, the catalog."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from uuid import uuid4

import msgspec
import pytest

from services.billing.catalog import Catalog
from services.billing.errors import InvalidSignature, MalformedEvent, SignatureExpired, WebhooksNotConfigured
from services.billing.models import SubscriptionState
from services.billing.processor import backoff
from services.billing.settings import PREFIX, BillingSettings
from services.billing.stripe_api import StripeInvoice, StripeSubscription
from services.billing.sync import state_of, transition
from services.billing.webhooks import verify
from shared.devstack.fakestripe.signing import sign
from shared.settings import SettingsError, load_settings

SECRET = "whsec_unit"


def _state(status: str, plan: str = "starter", cancel: bool = False) -> SubscriptionState:
    return SubscriptionState(
        subscription_id="sub_1",
        tenant_id=uuid4(),
        customer_id="cus_1",
        plan=plan,
        price_id="price_1",
        status=status,
        current_period_end=datetime(2026, 12, 1, tzinfo=UTC),
        cancel_at_period_end=cancel,
        canceled_at=None,
        trial_end=None,
        created_at=datetime(2026, 11, 1, tzinfo=UTC),
    )


def test_settings_read_secrets_from_either_name() -> None:
    env = {"STRIPE_WEBHOOK_SECRET": "whsec_a, whsec_b", "BILLING_STRIPE_WEBHOOK_SECRETS": "whsec_c,whsec_a"}
    settings = load_settings(BillingSettings, PREFIX, env)
    assert settings.webhook_secrets == ("whsec_c", "whsec_a", "whsec_b")
    assert settings.api_key.startswith("sk_test_")  # development: the fake takes any key


def test_production_needs_stripe_keys_secrets_and_prices() -> None:
    with pytest.raises(SettingsError) as refused:
        load_settings(BillingSettings, PREFIX, {"APP_ENV": "production", "SECRETS_KEY": "prod:x"})
    text = str(refused.value)
    needed = (
        "STRIPE_API_KEY",
        "STRIPE_WEBHOOK_SECRET",
        "PRICE_STARTER",
        "PRICE_PROFESSIONAL",
        "PRICE_ENTERPRISE",
    )
    for name in needed:
        assert name in text
    ok = load_settings(
        BillingSettings,
        PREFIX,
        {
            "APP_ENV": "production",
            "STRIPE_API_KEY": "sk_live_abc",
            "STRIPE_WEBHOOK_SECRET": "whsec_live",
            "BILLING_STRIPE_PRICE_STARTER": "price_s",
            "BILLING_STRIPE_PRICE_PROFESSIONAL": "price_p",
            "BILLING_STRIPE_PRICE_ENTERPRISE": "price_e",
        },
    )
    assert ok.configured_prices == {"starter": "price_s", "professional": "price_p", "enterprise": "price_e"}
    assert ok.api_key == "sk_live_abc"
    with pytest.raises(SettingsError, match="OVERAGE_EVERY_MINUTES"):
        load_settings(BillingSettings, PREFIX, {"BILLING_OVERAGE_EVERY_MINUTES": "7"})


@pytest.mark.parametrize(
    ("old", "new", "announced"),
    [
        (None, "active", "billing.subscription.activated"),
        (None, "trialing", "billing.subscription.activated"),
        (None, "incomplete", None),
        (None, "canceled", None),  # first heard of when already over: nobody saw it active
        ("incomplete", "active", "billing.subscription.activated"),
        ("active", "past_due", "billing.subscription.changed"),
        ("past_due", "active", "billing.subscription.changed"),
        ("active", "canceled", "billing.subscription.canceled"),
        ("past_due", "unpaid", "billing.subscription.canceled"),
        ("canceled", "canceled", None),
        ("active", "active", None),
    ],
)
def test_transition(old: str | None, new: str, announced: str | None) -> None:
    before = _state(old) if old else None
    after = _state(new)
    if before is not None:
        after = msgspec.structs.replace(after, tenant_id=before.tenant_id)
    payload = transition(before, after)
    assert (payload.TYPE if payload else None) == announced


def test_plan_change_and_cancel_at_period_end_are_changes() -> None:
    before = _state("active", "starter")
    upgraded = msgspec.structs.replace(before, plan="enterprise")
    payload = transition(before, upgraded)
    assert payload is not None and payload.TYPE == "billing.subscription.changed"
    assert payload.previous_plan == "starter"  # type: ignore[attr-defined]
    ending = msgspec.structs.replace(before, cancel_at_period_end=True)
    changed = transition(before, ending)
    assert changed is not None and changed.cancel_at_period_end is True  # type: ignore[attr-defined]


def test_stripe_shapes_old_and_new() -> None:
    new = msgspec.convert(
        {
            "id": "sub_1",
            "customer": "cus_1",
            "status": "active",
            "items": {"data": [{"price": {"id": "price_new"}, "current_period_end": 1_800_000_000}]},
            "cancel_at": 1_800_000_000,
        },
        StripeSubscription,
    )
    old = msgspec.convert(
        {
            "id": "sub_2",
            "customer": "cus_1",
            "status": "active",
            "items": {"data": [{"plan": {"id": "price_old"}}]},
            "current_period_end": 1_700_000_000,
        },
        StripeSubscription,
    )
    assert (new.price_id, new.period_end, old.price_id, old.period_end) == (
        "price_new",
        1_800_000_000,
        "price_old",
        1_700_000_000,
    )
    assert state_of(new, uuid4(), "starter").cancel_at_period_end is True  # cancel_at counts as ending
    invoice = msgspec.convert(
        {"id": "in_1", "customer": "cus_1", "parent": {"subscription_details": {"subscription": "sub_9"}}},
        StripeInvoice,
    )
    assert invoice.subscription_id == "sub_9"
    legacy = msgspec.convert({"id": "in_2", "customer": "c", "subscription": "sub_8"}, StripeInvoice)
    assert legacy.subscription_id == "sub_8"


def _body(**extra: object) -> bytes:
    return json.dumps({"id": "evt_1", "type": "invoice.paid", "created": int(time.time()), **extra}).encode()


def test_verify_accepts_any_configured_secret() -> None:
    body = _body()
    event = verify(body, sign(body, "whsec_two"), ("whsec_one", "whsec_two"), 300)
    assert (event.id, event.type, event.livemode) == ("evt_1", "invoice.paid", False)


def test_verify_refusals() -> None:
    body = _body()
    with pytest.raises(WebhooksNotConfigured):
        verify(body, sign(body, SECRET), (), 300)
    with pytest.raises(InvalidSignature):
        verify(body, None, (SECRET,), 300)
    with pytest.raises(InvalidSignature):
        verify(body, sign(body, "whsec_other"), (SECRET,), 300)
    with pytest.raises(SignatureExpired):
        verify(body, sign(body, SECRET, int(time.time()) - 301), (SECRET,), 300)
    for bad in (b"{", b"[1]", b'{"id": "nope", "type": "x", "created": 1}', b'{"id": "evt_2", "type": "x"}'):
        with pytest.raises(MalformedEvent):
            verify(bad, sign(bad, SECRET), (SECRET,), 300)


def test_catalog_maps_prices_both_ways() -> None:
    catalog = Catalog({"starter": "price_s", "enterprise": "price_e"}, {"starter": "price_meter"})
    assert catalog.plan_for("price_e") == "enterprise"
    assert catalog.plan_for("price_unknown") is None
    assert catalog.checkout_prices("starter") == ["price_s", "price_meter"]
    assert catalog.checkout_prices("enterprise") == ["price_e"]


def test_backoff_grows_and_is_capped() -> None:
    assert 0.8 <= backoff(0) <= 1.2
    assert 6.4 <= backoff(3) <= 9.6
    assert backoff(40) <= 3600 * 1.2
