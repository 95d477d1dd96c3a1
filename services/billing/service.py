"""Domain logic of the billing service's requests (no HTTP, no SQL).

Stripe writes carry idempotency keys built from the tenant and the intent:
  customer   catalytic:customer:<tenant>                 (one customer per tenant, ever)
  checkout   catalytic:checkout:<tenant>:<plan>:<seq>     (seq = the tenant's attempt at that plan)
  portal     catalytic:portal:<tenant>:<request id>
  cancel     catalytic:cancel:<subscription>:<request id>
so a retried request, or the SDK's own retry, never makes a second object. A tenant's requests
that write to Stripe are serialized by an advisory lock taken in the request's transaction.
"""

from __future__ import annotations

import logging
from uuid import UUID

from prometheus_client import Counter

from services.billing import repository as repo
from services.billing import sync
from services.billing import webhooks as signatures
from services.billing.errors import (
    NoSubscription,
    PlanNotPurchasable,
    SubscriptionAlreadyCanceled,
    SubscriptionExists,
    UnknownPlan,
)
from services.billing.models import (
    CheckoutSession,
    InvoicePage,
    PlanInfo,
    PortalSession,
    SubscriptionState,
    SubscriptionView,
    WebhookReceipt,
    from_unix,
)
from services.billing.runtime import Billing
from services.billing.settings import BillingSettings
from shared.db import Connection
from shared.errors import AppError
from shared.events import Actor
from shared.plans import DEFAULT_PLAN, PLANS

log = logging.getLogger("catalytic.billing")

WEBHOOKS = Counter("billing_stripe_webhooks_total", "Stripe webhooks received, by result", ["result"])


def plans(settings: BillingSettings) -> list[PlanInfo]:
    sellable = settings.configured_prices if settings.is_production else {p: "" for p in PLANS}
    return [
        PlanInfo(
            id=p.id,
            name=p.name,
            price_cents=p.price_cents,
            currency="usd",
            interval="month",
            requests_per_minute=p.requests_per_minute,
            calls_per_month=p.calls_per_month,
            seats=p.seats,
            api_keys=p.api_keys,
            overage_cents_per_1000=p.overage_cents_per_1000,
            purchasable=p.price_cents > 0 and p.id in sellable,
        )
        for p in PLANS.values()
    ]


async def _customer(tx: Connection, billing: Billing, tenant_id: UUID) -> str:
    """The tenant's Stripe customer, created on first need (caller holds the tenant's lock)."""
    found = await repo.customer_of(tx, tenant_id)
    if found is not None:
        return found
    contact = await repo.contact(tx, tenant_id)
    customer_id = await billing.api.create_customer(
        tenant_id=str(tenant_id),
        email=contact.email,
        name=contact.tenant_name,
        key=f"catalytic:customer:{tenant_id}",
    )
    await repo.add_customer(tx, tenant_id, customer_id, contact.email)
    return customer_id


async def checkout(tx: Connection, billing: Billing, tenant_id: UUID, plan_id: str) -> CheckoutSession:
    plan = PLANS.get(plan_id)
    if plan is None:
        raise UnknownPlan(f"no plan {plan_id!r}; choose from {', '.join(PLANS)}")
    catalog = await billing.catalog.get()
    if plan.price_cents <= 0 or catalog.price_for(plan.id) is None:
        raise PlanNotPurchasable(f"the {plan.name} plan is not sold through checkout")
    await repo.lock(tx, f"tenant:{tenant_id}")
    current = await repo.current_subscription(tx, tenant_id)
    if current is not None and current.entitled:
        raise SubscriptionExists(
            f"the tenant is on {current.plan} ({current.status}); use the billing portal"
        )
    reusable = await repo.open_checkout(tx, tenant_id, plan.id)
    if reusable is not None:
        return CheckoutSession(session_id=reusable.id, url=reusable.url)
    customer_id = await _customer(tx, billing, tenant_id)
    seq = await repo.next_checkout_seq(tx, tenant_id, plan.id)
    session = await billing.api.create_checkout_session(
        customer=customer_id,
        tenant_id=str(tenant_id),
        plan=plan.id,
        prices=catalog.checkout_prices(plan.id),
        success_url=billing.settings.success_url,
        cancel_url=billing.settings.cancel_url,
        trial_days=billing.settings.trial_days,
        key=f"catalytic:checkout:{tenant_id}:{plan.id}:{seq}",
    )
    url = session.url or ""
    await repo.add_checkout(
        tx,
        session_id=session.id,
        tenant_id=tenant_id,
        plan=plan.id,
        seq=seq,
        url=url,
        expires_at=from_unix(session.expires_at),
    )
    return CheckoutSession(session_id=session.id, url=url)


async def portal(tx: Connection, billing: Billing, tenant_id: UUID, request_id: str) -> PortalSession:
    await repo.lock(tx, f"tenant:{tenant_id}")
    customer_id = await _customer(tx, billing, tenant_id)
    url = await billing.api.create_portal_session(
        customer=customer_id,
        return_url=billing.settings.return_url,
        key=f"catalytic:portal:{tenant_id}:{request_id}",
    )
    return PortalSession(url=url)


def _view(state: SubscriptionState | None) -> SubscriptionView:
    if state is None:
        return SubscriptionView(plan=DEFAULT_PLAN, status="none")
    return SubscriptionView(
        plan=state.plan if state.entitled else DEFAULT_PLAN,
        status=state.status,
        subscription_id=state.subscription_id,
        current_period_end=state.current_period_end,
        cancel_at_period_end=state.cancel_at_period_end,
        trial_end=state.trial_end,
        canceled_at=state.canceled_at,
    )


async def subscription(tx: Connection, tenant_id: UUID) -> SubscriptionView:
    return _view(await repo.current_subscription(tx, tenant_id))


async def cancel(
    tx: Connection, billing: Billing, tenant_id: UUID, actor: Actor, request_id: str
) -> SubscriptionView:
    """Cancel at the end of the paid period (Stripe keeps the plan until then)."""
    await repo.lock(tx, f"tenant:{tenant_id}")
    current = await repo.current_subscription(tx, tenant_id)
    if current is None or not current.entitled:
        raise NoSubscription()
    if current.cancel_at_period_end:
        raise SubscriptionAlreadyCanceled()
    await repo.lock(tx, f"subscription:{current.subscription_id}")
    remote = await billing.api.cancel_at_period_end(
        current.subscription_id, key=f"catalytic:cancel:{current.subscription_id}:{request_id}"
    )
    return _view(await sync.apply_cancel(tx, billing, remote, tenant_id, actor, request_id))


async def invoices(tx: Connection, tenant_id: UUID, limit: int, starting_after: str | None) -> InvoicePage:
    rows = await repo.invoices(tx, tenant_id, limit + 1, starting_after)
    return InvoicePage(data=rows[:limit], has_more=len(rows) > limit)


async def receive(
    db: Connection, settings: BillingSettings, body: bytes, signature: str | None
) -> WebhookReceipt:
    """Verify a Stripe webhook and store its event once (one statement, its own transaction);
    the worker applies it."""
    try:
        event = signatures.verify(
            body, signature, settings.webhook_secrets, settings.stripe_webhook_tolerance_s
        )
    except AppError as exc:
        WEBHOOKS.labels(exc.code).inc()
        log.warning("stripe webhook refused: %s (%s)", exc.code, exc.message)  # never the body
        raise
    stored = await repo.store_event(
        db, event_id=event.id, type_=event.type, livemode=event.livemode, created=event.created, payload=body
    )
    WEBHOOKS.labels("stored" if stored else "duplicate").inc()
    return WebhookReceipt(received=True, event_id=event.id, duplicate=not stored)
