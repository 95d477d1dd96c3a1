"""Metered calls beyond a paid plan's monthly quota, reported to Stripe as billing meter events.

The count comes from the monthly quota counter in Redis (`shared.plans.quota_key`): a fixed
cross-service contract that the gateway increments on every call and the usage service keeps
in step with Postgres. Reading it couples billing to no other service's schema and needs no
new event; the usage service's own tables are never read.

Each run reports, per tenant and month, the calls beyond the quota not yet reported. A report
is first written down as pending (units, identifier, timestamp) and committed, then sent, then
acknowledged. The identifier is the running total the report reaches (`tenant:month:total`),
used as Stripe's meter-event identifier and idempotency key: a crash between sending and
acknowledging resends the very same report, which Stripe counts once. Reported totals only
grow, so a counter rebuilt lower after a Redis loss never takes anything back.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from redis.asyncio import Redis

from services.billing import repository as repo
from services.billing.models import BillableTenant
from services.billing.runtime import Billing
from shared.db import Pool, transaction
from shared.plans import PLANS, quota_key

log = logging.getLogger("catalytic.billing.overage")

LATE_DAYS = 3  # the previous month is still reported this many days into the next


def months_to_report(now: datetime) -> list[tuple[str, int]]:
    """(YYYY-MM, meter-event timestamp) pairs: this month now, and last month near its end."""
    found = [(now.strftime("%Y-%m"), int(now.timestamp()))]
    if now.day <= LATE_DAYS:
        start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        last = start - timedelta(seconds=1)
        found.append((last.strftime("%Y-%m"), int(last.timestamp())))
    return found


async def report_all(pool: Pool, redis: Redis, billing: Billing, now: datetime | None = None) -> int:
    """One pass over every billable tenant; answer the units reported in this pass."""
    now = now or datetime.now(UTC)
    metered = [p.id for p in PLANS.values() if p.overage_cents_per_1000 > 0]
    async with pool.acquire() as conn:
        tenants = await repo.billable_tenants(conn, metered)
    total = 0
    for tenant in tenants:
        for month, timestamp in months_to_report(now):
            raw = await redis.get(quota_key(str(tenant.tenant_id), month))
            used = int(raw) if raw is not None else 0
            overage = max(0, used - PLANS[tenant.plan].calls_per_month)
            total += await report_tenant(pool, billing, tenant, month, overage, timestamp)
    return total


async def report_tenant(
    pool: Pool, billing: Billing, tenant: BillableTenant, month: str, overage: int, timestamp: int
) -> int:
    """Bring Stripe's count of this tenant's month up to `overage`; answer the units sent."""
    sent = 0
    while True:
        async with transaction(pool) as tx:
            row = await repo.overage_report(tx, tenant.tenant_id, month, tenant.customer_id)
            if row.pending_identifier is not None and row.pending_units is not None:
                units, identifier = row.pending_units, row.pending_identifier
                at = row.pending_timestamp or timestamp  # an unfinished report goes out unchanged
            else:
                units = overage - row.reported_units
                if units <= 0:
                    return sent
                identifier = f"{tenant.tenant_id}:{month}:{row.reported_units + units}"
                at = timestamp
                await repo.set_overage_pending(tx, tenant.tenant_id, month, units, identifier, at)
        await billing.api.meter_event(
            event_name=billing.settings.stripe_meter_event_name,
            customer=tenant.customer_id,
            value=units,
            identifier=identifier,
            timestamp=at,
        )
        async with transaction(pool) as tx:
            await repo.ack_overage(tx, tenant.tenant_id, month, identifier)
        log.info("reported %d overage calls of tenant %s for %s", units, tenant.tenant_id, month)
        sent += units
