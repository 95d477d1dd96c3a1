"""Customers, subscriptions, checkout sessions and invoices: tenant-owned rows, read by tenant."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from services.billing.models import ENTITLED, BillableTenant, CheckoutRecord, Invoice, SubscriptionState
from shared.db import Connection

_ENTITLED = sorted(ENTITLED)

# --- locks: serialize work on one tenant or one Stripe object across processes -------------


async def lock(tx: Connection, name: str) -> None:
    """A transaction-scoped advisory lock on `name` (released at commit or rollback)."""
    await tx.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", f"billing:{name}")


# --- customers -----------------------------------------------------------------------------


async def customer_of(tx: Connection, tenant_id: UUID) -> str | None:
    value = await tx.fetchval("SELECT stripe_customer_id FROM customers WHERE tenant_id = $1", tenant_id)
    return str(value) if value is not None else None


async def tenant_of_customer(tx: Connection, customer_id: str) -> UUID | None:
    value = await tx.fetchval("SELECT tenant_id FROM customers WHERE stripe_customer_id = $1", customer_id)
    return value if isinstance(value, UUID) else None


async def add_customer(tx: Connection, tenant_id: UUID, customer_id: str, email: str | None) -> None:
    await tx.execute(
        "INSERT INTO customers (tenant_id, stripe_customer_id, email) VALUES ($1, $2, $3)"
        " ON CONFLICT (tenant_id) DO NOTHING",
        tenant_id,
        customer_id,
        email,
    )


# --- subscriptions ---------------------------------------------------------------------------

_SUB_COLUMNS = (
    "stripe_subscription_id AS subscription_id, tenant_id, stripe_customer_id AS customer_id, plan,"
    " price_id, status, current_period_end, cancel_at_period_end, canceled_at, trial_end,"
    " stripe_created_at AS created_at"
)


def _subscription(row: Any) -> SubscriptionState | None:
    return SubscriptionState(**dict(row)) if row is not None else None


async def subscription(tx: Connection, subscription_id: str) -> SubscriptionState | None:
    row = await tx.fetchrow(
        f"SELECT {_SUB_COLUMNS} FROM subscriptions WHERE stripe_subscription_id = $1", subscription_id
    )
    return _subscription(row)


async def save_subscription(tx: Connection, s: SubscriptionState) -> None:
    await tx.execute(
        "INSERT INTO subscriptions (stripe_subscription_id, tenant_id, stripe_customer_id, plan, price_id,"
        " status, current_period_end, cancel_at_period_end, canceled_at, trial_end, stripe_created_at)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
        " ON CONFLICT (stripe_subscription_id) DO UPDATE SET plan = EXCLUDED.plan,"
        " price_id = EXCLUDED.price_id, status = EXCLUDED.status,"
        " current_period_end = EXCLUDED.current_period_end,"
        " cancel_at_period_end = EXCLUDED.cancel_at_period_end, canceled_at = EXCLUDED.canceled_at,"
        " trial_end = EXCLUDED.trial_end, synced_at = now()",
        s.subscription_id,
        s.tenant_id,
        s.customer_id,
        s.plan,
        s.price_id,
        s.status,
        s.current_period_end,
        s.cancel_at_period_end,
        s.canceled_at,
        s.trial_end,
        s.created_at,
    )


async def current_subscription(tx: Connection, tenant_id: UUID) -> SubscriptionState | None:
    """The tenant's entitled subscription if it has one, else its most recent one."""
    row = await tx.fetchrow(
        f"SELECT {_SUB_COLUMNS} FROM subscriptions WHERE tenant_id = $1"
        " ORDER BY (status = ANY($2::text[])) DESC, stripe_created_at DESC LIMIT 1",
        tenant_id,
        _ENTITLED,
    )
    return _subscription(row)


async def other_entitled(tx: Connection, tenant_id: UUID, subscription_id: str) -> SubscriptionState | None:
    row = await tx.fetchrow(
        f"SELECT {_SUB_COLUMNS} FROM subscriptions WHERE tenant_id = $1 AND stripe_subscription_id <> $2"
        " AND status = ANY($3::text[]) ORDER BY stripe_created_at DESC LIMIT 1",
        tenant_id,
        subscription_id,
        _ENTITLED,
    )
    return _subscription(row)


async def billable_tenants(tx: Connection, plans: list[str]) -> list[BillableTenant]:
    """Tenants with an entitled subscription on one of `plans` (those that bill overage)."""
    rows = await tx.fetch(
        "SELECT DISTINCT ON (tenant_id) tenant_id, stripe_customer_id AS customer_id, plan"
        " FROM subscriptions WHERE status = ANY($1::text[]) AND plan = ANY($2::text[])"
        " ORDER BY tenant_id, stripe_created_at DESC",
        _ENTITLED,
        plans,
    )
    return [BillableTenant(**dict(r)) for r in rows]


# --- checkout sessions ---------------------------------------------------------------------


async def open_checkout(tx: Connection, tenant_id: UUID, plan: str) -> CheckoutRecord | None:
    """A session of this tenant and plan still open for a while, to hand out again."""
    row = await tx.fetchrow(
        "SELECT id, tenant_id, plan, seq, url, status, expires_at FROM checkout_sessions"
        " WHERE tenant_id = $1 AND plan = $2 AND status = 'open'"
        " AND expires_at > now() + interval '30 minutes' AND created_at > now() - interval '1 hour'"
        " ORDER BY seq DESC LIMIT 1",
        tenant_id,
        plan,
    )
    return CheckoutRecord(**dict(row)) if row is not None else None


async def next_checkout_seq(tx: Connection, tenant_id: UUID, plan: str) -> int:
    value = await tx.fetchval(
        "SELECT coalesce(max(seq), 0) + 1 FROM checkout_sessions WHERE tenant_id = $1 AND plan = $2",
        tenant_id,
        plan,
    )
    return int(value)


async def add_checkout(
    tx: Connection,
    *,
    session_id: str,
    tenant_id: UUID,
    plan: str,
    seq: int,
    url: str,
    expires_at: datetime | None,
) -> None:
    await tx.execute(
        "INSERT INTO checkout_sessions (id, tenant_id, plan, seq, url, expires_at)"
        " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO NOTHING",
        session_id,
        tenant_id,
        plan,
        seq,
        url,
        expires_at,
    )


async def checkout_record(tx: Connection, session_id: str) -> CheckoutRecord | None:
    row = await tx.fetchrow(
        "SELECT id, tenant_id, plan, seq, url, status, expires_at FROM checkout_sessions WHERE id = $1",
        session_id,
    )
    return CheckoutRecord(**dict(row)) if row is not None else None


async def close_open_checkouts(tx: Connection, tenant_id: UUID) -> None:
    """A tenant that just subscribed has no use for its other open sessions."""
    await tx.execute(
        "UPDATE checkout_sessions SET status = 'superseded' WHERE tenant_id = $1 AND status = 'open'",
        tenant_id,
    )


async def set_checkout_status(tx: Connection, session_id: str, status: str) -> None:
    await tx.execute(
        "UPDATE checkout_sessions SET status = $2,"
        " completed_at = CASE WHEN $2 = 'complete' THEN now() ELSE completed_at END WHERE id = $1",
        session_id,
        status,
    )


# --- invoices ------------------------------------------------------------------------------


async def save_invoice(tx: Connection, tenant_id: UUID, i: Invoice) -> None:
    await tx.execute(
        "INSERT INTO invoices (id, tenant_id, stripe_subscription_id, status, number, currency, amount_due,"
        " amount_paid, attempt_count, next_payment_attempt, hosted_invoice_url, invoice_pdf, period_start,"
        " period_end, stripe_created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13,"
        " $14, $15) ON CONFLICT (id) DO UPDATE SET status = EXCLUDED.status, number = EXCLUDED.number,"
        " amount_due = EXCLUDED.amount_due, amount_paid = EXCLUDED.amount_paid,"
        " attempt_count = EXCLUDED.attempt_count, next_payment_attempt = EXCLUDED.next_payment_attempt,"
        " hosted_invoice_url = EXCLUDED.hosted_invoice_url, invoice_pdf = EXCLUDED.invoice_pdf,"
        " synced_at = now()",
        i.id,
        tenant_id,
        i.subscription_id,
        i.status,
        i.number,
        i.currency,
        i.amount_due,
        i.amount_paid,
        i.attempt_count,
        i.next_payment_attempt,
        i.hosted_invoice_url,
        i.invoice_pdf,
        i.period_start,
        i.period_end,
        i.created_at,
    )


async def invoices(tx: Connection, tenant_id: UUID, limit: int, starting_after: str | None) -> list[Invoice]:
    """Newest first; `starting_after` (an invoice id of this tenant) continues a page."""
    rows = await tx.fetch(
        "SELECT id, stripe_subscription_id AS subscription_id, status, number, currency, amount_due,"
        " amount_paid, attempt_count, next_payment_attempt, hosted_invoice_url, invoice_pdf, period_start,"
        " period_end, stripe_created_at AS created_at FROM invoices i WHERE tenant_id = $1"
        " AND ($3::text IS NULL OR (stripe_created_at, id) < (SELECT stripe_created_at, id FROM invoices"
        "      WHERE id = $3 AND tenant_id = $1))"
        " ORDER BY stripe_created_at DESC, id DESC LIMIT $2",
        tenant_id,
        limit,
        starting_after,
    )
    return [Invoice(**dict(r)) for r in rows]
