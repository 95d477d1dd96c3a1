"""Stripe customers and subscriptions brought over from the legacy monolith (`catalytic import-legacy`)."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from shared.db import Connection


async def insert_subscription(
    tx: Connection,
    *,
    tenant_id: UUID,
    customer_id: str,
    subscription_id: str,
    plan: str,
    status: str,
    current_period_end: datetime | None,
    cancel_at_period_end: bool,
    created_at: datetime,
) -> bool:
    """False when the subscription is there already. The customer row is added once per tenant."""
    await tx.execute(
        "INSERT INTO customers (tenant_id, stripe_customer_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        tenant_id,
        customer_id,
    )
    row = await tx.fetchrow(
        "INSERT INTO subscriptions (stripe_subscription_id, tenant_id, stripe_customer_id, plan, status,"
        " current_period_end, cancel_at_period_end, stripe_created_at)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING RETURNING tenant_id",
        subscription_id,
        tenant_id,
        customer_id,
        plan,
        status,
        current_period_end,
        cancel_at_period_end,
        created_at,
    )
    return row is not None
