"""Test helpers: what a paying customer or Stripe's clock would do, and the webhooks that follows.

Each helper changes localstripe's objects the way Stripe would, collects the events that
change caused (localstripe records every event in its store), and, when asked, delivers
them signed with Stripe's scheme: `Stripe-Signature: t=<unix>,v1=<HMAC-SHA256(secret, "t.body")>`.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Any

import aiohttp
from localstripe.errors import UserError
from localstripe.resources import (
    Customer,
    Event,
    Invoice,
    PaymentMethod,
    Subscription,
    schedule_webhook,
    store,
)

from shared.devstack.fakestripe.prices import Price
from shared.devstack.fakestripe.sessions import CheckoutSession
from shared.devstack.fakestripe.signing import sign

log = logging.getLogger("fakestripe")

DELIVERY_ATTEMPTS = 3


def _event_keys() -> list[str]:
    return [key for key in store if key.startswith("event:")]


def _caused(change: Callable[[], Any]) -> tuple[Any, list[Any]]:
    """Run `change`; answer its result and the events it recorded, oldest first."""
    before = set(_event_keys())
    result = change()
    return result, [store[key] for key in _event_keys() if key not in before]


def _emit(kind: str, obj: Any) -> None:
    schedule_webhook(Event(kind, obj))


def _licensed(price_id: str) -> bool:
    return bool(Price._api_retrieve(price_id).recurring["usage_type"] == "licensed")


def _complete(session_id: str, payment_method: str) -> Any:
    session = CheckoutSession._api_retrieve(session_id)
    session._check_open()
    customer_id = session.customer
    if customer_id is None:
        customer_id = Customer(email=session.customer_email).id
    pm = PaymentMethod._api_retrieve(payment_method)
    PaymentMethod._api_attach(pm.id, customer=customer_id)
    customer = Customer._api_retrieve(customer_id)
    customer.invoice_settings["default_payment_method"] = pm.id
    licensed = [
        i
        for i in session._line_items
        if Price._api_retrieve(i["price"]).recurring["usage_type"] == "licensed"
    ]
    trial_days = session._trial_period_days
    sub = Subscription(
        customer=customer_id,
        items=[{"plan": licensed[0]["price"], "quantity": licensed[0]["quantity"]}],
        metadata=dict(session._subscription_metadata),
        trial_period_days=trial_days,
        payment_behavior="error_if_incomplete",
    )
    if trial_days:
        # localstripe leaves a trial subscription `incomplete`; Stripe starts it `trialing`.
        sub.status = "trialing"
        sub.trial_start = sub.created
        sub.trial_end = sub.created + trial_days * 86_400
    elif sub.latest_invoice:
        _emit("invoice.paid", Invoice._api_retrieve(sub.latest_invoice))
    session.customer = customer_id
    session.subscription = sub.id
    session.invoice = sub.latest_invoice
    session.status = "complete"
    session.payment_status = "no_payment_required" if trial_days else "paid"
    session.customer_details = {"email": customer.email, "name": customer.name}
    _emit("checkout.session.completed", session)
    return session


def _renew(subscription_id: str, outcome: str) -> Any:
    """The end of the current period: cancel if asked to, else invoice the next one."""
    sub = Subscription._api_retrieve(subscription_id)
    if sub.status == "canceled":
        raise UserError(400, "This subscription is canceled.")
    if sub.cancel_at_period_end:
        return Subscription._api_delete(sub.id)  # emits customer.subscription.deleted
    previous = sub._export()
    sub.start_date = sub.current_period_end  # the next period begins (localstripe counts from start_date)
    invoice = Invoice(customer=sub.customer, subscription=sub.id, items=list(sub.items._list))
    invoice._finalize()
    invoice.billing_reason = "subscription_cycle"
    _emit("invoice.finalized", invoice)
    if outcome == "failed":
        invoice.attempt_count = 1
        sub.status = "past_due"
        _emit("invoice.payment_failed", invoice)
    else:
        Invoice._api_pay_invoice(invoice.id)  # localstripe emits invoice.payment_succeeded
        if invoice.status == "paid":
            _emit("invoice.paid", invoice)
            sub.status = "active"
    _emit_updated(sub, {"status": previous["status"], "current_period_end": previous["current_period_end"]})
    return sub


def _trial_will_end(subscription_id: str) -> Any:
    sub = Subscription._api_retrieve(subscription_id)
    if sub.status != "trialing":
        raise UserError(400, "This subscription is not trialing.")
    _emit("customer.subscription.trial_will_end", sub)
    return sub


def _emit_updated(sub: Any, previous: dict[str, Any]) -> None:
    event = Event("customer.subscription.updated", sub)
    event.data["previous_attributes"] = previous
    schedule_webhook(event)


async def _deliver(events: list[Any], url: str, secret: str, headers: dict[str, str]) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
        for event in events:
            body = json.dumps(event._export(), indent=2, sort_keys=True).encode()
            status, error = 0, ""
            for attempt in range(DELIVERY_ATTEMPTS):
                send = {"Content-Type": "application/json; charset=utf-8", **headers}
                send["Stripe-Signature"] = sign(body, secret)
                try:
                    async with http.post(url, data=body, headers=send) as resp:
                        status, error = resp.status, "" if resp.status < 300 else (await resp.text())[:300]
                except (aiohttp.ClientError, TimeoutError) as exc:
                    status, error = 0, str(exc) or type(exc).__name__
                if 200 <= status < 300 or 400 <= status < 500:
                    break  # delivered, or refused for good
                await asyncio.sleep(0.2 * (attempt + 1))
            log.info("webhook %s %s -> %s %s", event.id, event.type, url, status or error)
            results.append({"event": event.id, "type": event.type, "status": status, "error": error})
    return results


async def run_helper(change: Callable[[], Any], options: dict[str, Any]) -> dict[str, Any]:
    """Apply a helper's change; deliver its events if `deliver_to` was given; answer the object."""
    obj, events = _caused(change)
    exported: dict[str, Any] = obj._export()
    exported["fake_events"] = [e.id for e in events]
    url = options.get("deliver_to")
    if url:
        secret = options.get("webhook_secret")
        headers = options.get("webhook_headers") or {}
        if not isinstance(secret, str) or not secret or not isinstance(headers, dict):
            raise UserError(400, "deliver_to needs webhook_secret (and webhook_headers must be a hash)")
        exported["fake_deliveries"] = await _deliver(events, url, secret, headers)
    return exported


def complete_checkout(session_id: str, payment_method: str = "pm_card_visa") -> Callable[[], Any]:
    return lambda: _complete(session_id, payment_method)


def renew_subscription(subscription_id: str, outcome: str = "succeeded") -> Callable[[], Any]:
    if outcome not in ("succeeded", "failed"):
        raise UserError(400, "outcome must be succeeded or failed")
    return lambda: _renew(subscription_id, outcome)


def trial_will_end(subscription_id: str) -> Callable[[], Any]:
    return lambda: _trial_will_end(subscription_id)


def subscription_updated(subscription_id: str, previous: dict[str, Any]) -> None:
    _emit_updated(Subscription._api_retrieve(subscription_id), previous)
