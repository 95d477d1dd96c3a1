"""Stripe → gateway → billing → bus → identity and notifier, with the fake Stripe of the `dev` profile."""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import httpx

from tests.compose.conftest import Account, Compose, Mailbox, poll, register


def _signed(payload: bytes, secret: str) -> str:
    t = int(time.time())
    mac = hmac.new(secret.encode(), f"{t}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def test_paid_checkout_activates_the_plan_and_mails_a_receipt(
    compose: Compose, gateway: httpx.Client, mail: Mailbox
) -> None:
    buyer = register(gateway, "buyer")
    assert gateway.get("/billing/plans").status_code == 200
    checkout = gateway.post("/billing/checkout", json={"plan": "starter"}, headers=buyer.bearer)
    assert checkout.status_code == 201, checkout.text
    session_id = checkout.json()["session_id"]

    # What the customer's payment does at Stripe: the fake completes the session and delivers
    # the events it caused, signed with the webhook secret, to the gateway's /webhooks/stripe.
    out = compose.exec("billing", "catalytic", "dev", "checkout-complete", session_id, "--to", "gateway")
    assert session_id in out

    def active() -> dict[str, object] | None:
        sub = gateway.get("/billing/subscription", headers=buyer.bearer)
        assert sub.status_code == 200, sub.text
        return sub.json() if sub.json()["status"] == "active" else None

    assert poll(active, timeout=60)["plan"] == "starter"
    # identity consumed billing's event: the tenant's plan (and new tokens' claim) follows.
    poll(lambda: True if gateway.get("/me", headers=buyer.bearer).json()["plan"] == "starter" else None)
    receipt = mail.wait_for(buyer.email, "Payment received")
    assert "29" in receipt["Subject"]


def test_badly_signed_webhook_is_refused_and_changes_nothing(gateway: httpx.Client, owner: Account) -> None:
    event = {
        "id": "evt_compose_forged",
        "object": "event",
        "type": "customer.subscription.deleted",
        "created": int(time.time()),
        "data": {"object": {"id": "sub_compose_forged", "object": "subscription", "status": "canceled"}},
    }
    body = json.dumps(event).encode()
    forged = gateway.post(
        "/webhooks/stripe",
        content=body,
        headers={"Content-Type": "application/json", "Stripe-Signature": _signed(body, "whsec_not_ours")},
    )
    assert forged.status_code == 400, forged.text
    unsigned = gateway.post("/webhooks/stripe", content=body, headers={"Content-Type": "application/json"})
    assert unsigned.status_code == 400, unsigned.text
    assert gateway.get("/me", headers=owner.bearer).json()["plan"] == "free"
