"""Overage reports sent to Stripe, per tenant and month."""

from __future__ import annotations

from uuid import UUID

from services.billing.models import OverageReport
from shared.db import Connection

# --- overage reports -------------------------------------------------------------------------


async def overage_report(tx: Connection, tenant_id: UUID, month: str, customer_id: str) -> OverageReport:
    """The tenant's report row for `month`, created and locked (FOR UPDATE) for this transaction."""
    await tx.execute(
        "INSERT INTO overage_reports (tenant_id, month, stripe_customer_id) VALUES ($1, $2, $3)"
        " ON CONFLICT DO NOTHING",
        tenant_id,
        month,
        customer_id,
    )
    row = await tx.fetchrow(
        "SELECT reported_units, pending_units, pending_identifier, pending_timestamp FROM overage_reports"
        " WHERE tenant_id = $1 AND month = $2 FOR UPDATE",
        tenant_id,
        month,
    )
    assert row is not None  # inserted above
    return OverageReport(**dict(row))


async def set_overage_pending(
    tx: Connection, tenant_id: UUID, month: str, units: int, identifier: str, timestamp: int
) -> None:
    await tx.execute(
        "UPDATE overage_reports SET pending_units = $3, pending_identifier = $4, pending_timestamp = $5,"
        " updated_at = now() WHERE tenant_id = $1 AND month = $2",
        tenant_id,
        month,
        units,
        identifier,
        timestamp,
    )


async def ack_overage(tx: Connection, tenant_id: UUID, month: str, identifier: str) -> None:
    """Stripe has the pending report `identifier`: count it (once, however often acknowledged)."""
    await tx.execute(
        "UPDATE overage_reports SET reported_units = reported_units + pending_units, pending_units = NULL,"
        " pending_identifier = NULL, pending_timestamp = NULL, updated_at = now()"
        " WHERE tenant_id = $1 AND month = $2 AND pending_identifier = $3",
        tenant_id,
        month,
        identifier,
    )
