"""Stripe events -> billing state and stream events (runs in the worker, one event per transaction).

Stripe may deliver an event late, twice or out of order, so an event is only a hint of *what*
changed: the object is re-read from Stripe and compared with what billing last saw. Advisory
locks (one per Stripe customer for the whole event, one per subscription around its read and
write, also taken by the cancel request) make "read from Stripe, then write" atomic across
processes, so a later commit always carries an equal or newer read: whatever the delivery
order, the stored state converges to Stripe's current state, and only real transitions are
announced. Lock order is always customer -> subscription (requests: tenant -> subscription).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import msgspec

from services.billing import repository as repo
from services.billing.errors import PaymentProviderError
from services.billing.models import Invoice, StoredEvent, SubscriptionState, from_unix
from services.billing.runtime import Billing
from services.billing.stripe_api import StripeInvoice, StripeSubscription
from shared.bus import add_event
from shared.db import Connection
from shared.events import (
    Actor,
    CheckoutCompleted,
    Payload,
    PaymentFailed,
    PaymentSucceeded,
    SubscriptionActivated,
    SubscriptionCanceled,
    SubscriptionChanged,
    TrialEnding,
    new_event,
)
from shared.plans import DEFAULT_PLAN, PLANS

log = logging.getLogger("catalytic.billing.sync")

SUBSCRIPTION_EVENTS = frozenset(
    {
        "customer.subscription.created",
        "customer.subscription.updated",
        "customer.subscription.deleted",
        "customer.subscription.paused",
        "customer.subscription.resumed",
        "customer.subscription.trial_will_end",
    }
)
INVOICE_EVENTS = frozenset(
    {
        "invoice.paid",
        "invoice.payment_succeeded",
        "invoice.payment_failed",
        "invoice.finalized",
        "invoice.voided",
    }
)
CHECKOUT_EVENTS = frozenset(
    {"checkout.session.completed", "checkout.session.async_payment_succeeded", "checkout.session.expired"}
)
HANDLED = SUBSCRIPTION_EVENTS | INVOICE_EVENTS | CHECKOUT_EVENTS


class _Object(msgspec.Struct, frozen=True):
    id: str
    customer: Any = None  # an id, or the customer itself when expanded
    attempt_count: int | None = None

    @property
    def customer_id(self) -> str | None:
        if isinstance(self.customer, dict):
            return str(self.customer.get("id") or "") or None
        return self.customer if isinstance(self.customer, str) else None


class _Data(msgspec.Struct, frozen=True):
    object: _Object


class _Envelope(msgspec.Struct, frozen=True):
    id: str
    type: str
    data: _Data


_envelope = msgspec.json.Decoder(_Envelope)

Outcome = tuple[str, str | None]  # (processed | ignored, note)


class _Context:
    """One event being applied: who to name as the actor and how to correlate what it causes."""

    def __init__(self, tx: Connection, billing: Billing, actor: Actor, correlation_id: str) -> None:
        self.tx = tx
        self.billing = billing
        self.actor = actor
        self.correlation_id = correlation_id

    async def announce(self, tenant_id: UUID, payload: Payload) -> None:
        event = new_event(payload, tenant_id=tenant_id, actor=self.actor, correlation_id=self.correlation_id)
        await add_event(self.tx, event)


async def apply(tx: Connection, billing: Billing, stored: StoredEvent) -> Outcome:
    """Apply one stored Stripe event inside `tx`; raise to have it retried later."""
    if stored.type not in HANDLED:
        return "ignored", f"{stored.type} is not handled"
    try:
        envelope = _envelope.decode(stored.payload)
    except msgspec.DecodeError as exc:
        return "ignored", f"unreadable event: {exc}"
    ctx = _Context(tx, billing, Actor(kind="stripe", id=stored.id), stored.id)
    obj = envelope.data.object
    object_id = obj.id
    # One customer's events are applied one at a time, whatever process claims them: no two
    # handlers ever wait on each other's rows, and Stripe is read in commit order.
    await repo.lock(tx, f"customer:{obj.customer_id or object_id}")
    try:
        if stored.type in CHECKOUT_EVENTS:
            return await _checkout(ctx, stored.type, object_id)
        if stored.type in INVOICE_EVENTS:
            return await _invoice(ctx, stored.type, object_id, obj.attempt_count)
        return await _subscription_event(ctx, stored.type, object_id)
    except PaymentProviderError as exc:
        if exc.extra.get("stripe_status") == 404:
            return "ignored", f"{object_id} is unknown to Stripe"
        raise


# --- tenants ---------------------------------------------------------------------------------


async def _tenant(ctx: _Context, customer_id: str, metadata: dict[str, str]) -> UUID | None:
    """The tenant of a Stripe customer: ours by id, else the tenant_id billing put in metadata."""
    found = await repo.tenant_of_customer(ctx.tx, customer_id)
    if found is not None:
        return found
    try:
        tenant_id = UUID(metadata.get("tenant_id", ""))
    except ValueError:
        return None
    await repo.add_customer(ctx.tx, tenant_id, customer_id, None)
    return tenant_id


# --- subscriptions ---------------------------------------------------------------------------


def state_of(remote: StripeSubscription, tenant_id: UUID, plan: str) -> SubscriptionState:
    return SubscriptionState(
        subscription_id=remote.id,
        tenant_id=tenant_id,
        customer_id=remote.customer,
        plan=plan,
        price_id=remote.price_id,
        status=remote.status,
        current_period_end=from_unix(remote.period_end),
        cancel_at_period_end=remote.cancel_at_period_end or remote.cancel_at is not None,
        canceled_at=from_unix(remote.canceled_at),
        trial_end=from_unix(remote.trial_end),
        created_at=from_unix(remote.created) or datetime.now(UTC),
    )


def transition(old: SubscriptionState | None, new: SubscriptionState) -> Payload | None:
    """The stream event a change from `old` to `new` deserves, if any."""
    fields: dict[str, Any] = {
        "subscription_id": new.subscription_id,
        "plan": new.plan,
        "status": new.status,
        "current_period_end": new.current_period_end,
        "cancel_at_period_end": new.cancel_at_period_end,
    }
    was_entitled = old is not None and old.entitled
    if new.entitled and not was_entitled:
        return SubscriptionActivated(**fields)
    if was_entitled and not new.entitled:
        return SubscriptionCanceled(**fields)
    if old is not None and was_entitled and old != new:
        return SubscriptionChanged(**fields, previous_plan=old.plan)
    return None


async def _plan_of(ctx: _Context, remote: StripeSubscription) -> str:
    catalog = await ctx.billing.catalog.get()
    plan = catalog.plan_for(remote.price_id)
    if plan is None:
        plan = remote.metadata.get("plan", "")
        log.warning(
            "subscription %s has unknown price %s; using metadata plan %r", remote.id, remote.price_id, plan
        )
    return plan if plan in PLANS else DEFAULT_PLAN


async def save_subscription(ctx: _Context, remote: StripeSubscription, tenant_id: UUID) -> SubscriptionState:
    """Store Stripe's state of a subscription (caller holds its lock) and announce the transition."""
    new = state_of(remote, tenant_id, await _plan_of(ctx, remote))
    old = await repo.subscription(ctx.tx, remote.id)
    if old == new:
        return new
    await repo.save_subscription(ctx.tx, new)
    payload = transition(old, new)
    if isinstance(payload, SubscriptionCanceled):
        other = await repo.other_entitled(ctx.tx, tenant_id, remote.id)
        if other is not None:
            # The tenant still pays through another subscription: its plan must not drop to free.
            log.info("subscription %s ended while %s stays entitled", remote.id, other.subscription_id)
            payload = None
    if isinstance(payload, SubscriptionActivated):
        await repo.close_open_checkouts(ctx.tx, tenant_id)
    if payload is not None:
        await ctx.announce(tenant_id, payload)
    return new


async def sync_subscription(
    ctx: _Context, subscription_id: str, tenant_id: UUID | None = None
) -> tuple[StripeSubscription, SubscriptionState] | None:
    await repo.lock(ctx.tx, f"subscription:{subscription_id}")
    remote = await ctx.billing.api.subscription(subscription_id)
    tenant_id = tenant_id or await _tenant(ctx, remote.customer, remote.metadata)
    if tenant_id is None:
        return None
    return remote, await save_subscription(ctx, remote, tenant_id)


async def _subscription_event(ctx: _Context, kind: str, subscription_id: str) -> Outcome:
    synced = await sync_subscription(ctx, subscription_id)
    if synced is None:
        return "ignored", "subscription of a customer billing does not know"
    remote, state = synced
    trial_end = state.trial_end
    if (
        kind == "customer.subscription.trial_will_end"
        and remote.status == "trialing"
        and trial_end is not None
        and await repo.first_notice(ctx.tx, "trial.ending", f"{remote.id}:{remote.trial_end}")
    ):
        await ctx.announce(state.tenant_id, TrialEnding(subscription_id=remote.id, trial_end=trial_end))
    return "processed", None


# --- checkout --------------------------------------------------------------------------------


async def _checkout(ctx: _Context, kind: str, session_id: str) -> Outcome:
    session = await ctx.billing.api.checkout_session(session_id)
    if session.mode != "subscription" or session.customer is None:
        return "ignored", "not a subscription checkout"
    record = await repo.checkout_record(ctx.tx, session.id)
    tenant_id = record.tenant_id if record else await _tenant(ctx, session.customer, session.metadata)
    if tenant_id is None:
        return "ignored", "checkout of a customer billing does not know"
    if session.status == "expired":
        if record is not None and record.status == "open":
            await repo.set_checkout_status(ctx.tx, session.id, "expired")
        return "processed", None
    if session.status != "complete":
        return "ignored", f"session is {session.status}"
    plan = record.plan if record else session.metadata.get("plan", DEFAULT_PLAN)
    if session.subscription:
        synced = await sync_subscription(ctx, session.subscription, tenant_id)
        plan = synced[1].plan if synced and record is None else plan  # a session made elsewhere
    if await repo.first_notice(ctx.tx, "checkout.completed", session.id):
        await repo.set_checkout_status(ctx.tx, session.id, "complete")
        await ctx.announce(
            tenant_id, CheckoutCompleted(session_id=session.id, plan=plan, customer_id=session.customer)
        )
    return "processed", None


# --- invoices --------------------------------------------------------------------------------


def invoice_of(remote: StripeInvoice) -> Invoice:
    return Invoice(
        id=remote.id,
        subscription_id=remote.subscription_id,
        status=remote.status or "draft",
        number=remote.number,
        currency=remote.currency,
        amount_due=remote.amount_due,
        amount_paid=remote.amount_paid,
        attempt_count=remote.attempt_count,
        next_payment_attempt=from_unix(remote.next_payment_attempt),
        hosted_invoice_url=remote.hosted_invoice_url,
        invoice_pdf=remote.invoice_pdf,
        period_start=from_unix(remote.period_start),
        period_end=from_unix(remote.period_end),
        created_at=from_unix(remote.created) or datetime.now(UTC),
    )


async def _invoice(ctx: _Context, kind: str, invoice_id: str, attempt: int | None) -> Outcome:
    remote = await ctx.billing.api.invoice(invoice_id)
    tenant_id = await _tenant(ctx, remote.customer, {})
    if tenant_id is None:
        return "ignored", "invoice of a customer billing does not know"
    invoice = invoice_of(remote)
    await repo.save_invoice(ctx.tx, tenant_id, invoice)
    money: dict[str, Any] = {
        "invoice_id": remote.id,
        "currency": remote.currency,
        "hosted_invoice_url": remote.hosted_invoice_url,
    }
    # Stripe sends invoice.paid and invoice.payment_succeeded for one payment: announce it once.
    if (
        remote.status == "paid"
        and remote.amount_paid > 0
        and await repo.first_notice(ctx.tx, "payment.succeeded", remote.id)
    ):
        await ctx.announce(tenant_id, PaymentSucceeded(amount_cents=remote.amount_paid, **money))
    # A failed attempt is announced once per attempt, and not at all once the invoice got paid
    # (a late failure event must not send a dunning mail for a settled invoice).
    if kind == "invoice.payment_failed" and remote.status in ("open", "uncollectible"):
        attempt = attempt or remote.attempt_count or 1
        if await repo.first_notice(ctx.tx, "payment.failed", f"{remote.id}:{attempt}"):
            await ctx.announce(
                tenant_id,
                PaymentFailed(
                    amount_cents=remote.amount_due,
                    attempt_count=attempt,
                    next_attempt_at=invoice.next_payment_attempt,
                    **money,
                ),
            )
    if remote.subscription_id:
        await sync_subscription(ctx, remote.subscription_id, tenant_id)
    return "processed", None


async def apply_cancel(
    tx: Connection,
    billing: Billing,
    remote: StripeSubscription,
    tenant_id: UUID,
    actor: Actor,
    correlation: str,
) -> SubscriptionState:
    """A subscription Stripe just answered with (the caller holds its lock): store and announce."""
    return await save_subscription(_Context(tx, billing, actor, correlation), remote, tenant_id)
