"""Overage: calls beyond a paid plan's quota (the Redis quota counter) reach Stripe's meter once."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from asyncpg import Connection
from redis.asyncio import Redis

from services.billing import overage
from services.billing import repository as repo
from services.billing.catalog import CatalogCache
from services.billing.runtime import Billing as Runtime
from services.billing.settings import BillingSettings
from services.billing.stripe_api import StripeApi
from shared.db import Pool, create_pool, transaction
from shared.devstack import DevEnv
from shared.plans import PLANS, quota_key
from tests.billing.conftest import Billing, Tenant


@pytest.fixture
async def runtime(peers: DevEnv) -> AsyncIterator[Runtime]:
    settings = BillingSettings(app_env="test", stripe_api_base=peers.stripe_api_base)
    api = StripeApi(settings)
    yield Runtime(settings, api, CatalogCache(settings, api))
    await api.close()


@pytest.fixture
async def billing_pool(peers: DevEnv) -> AsyncIterator[Pool]:
    pool = await create_pool(peers.database_url, schema="billing", application_name="tests", max_size=3)
    yield pool
    await pool.close()


def metered(billing: Billing, customer: str) -> float:
    """What Stripe's meter summed for the customer over the last day."""
    meter = next(
        m for m in billing.sdk.v1.billing.meters.list().data if m.event_name == "catalytic_api_calls"
    )
    now = int(time.time())
    summaries = billing.sdk.v1.billing.meters.event_summaries.list(
        meter.id, {"customer": customer, "start_time": now - 86_400, "end_time": now + 3_600}
    )
    return float(sum(s.aggregated_value for s in summaries.data))


async def test_overage_is_reported_once_and_only_what_is_new(
    billing: Billing,
    tenant: Tenant,
    other: Tenant,
    runtime: Runtime,
    billing_pool: Pool,
    bus: Redis,
    db: Connection,
) -> None:
    billing.subscribe(tenant, "starter")
    customer = await db.fetchval("SELECT stripe_customer_id FROM customers WHERE tenant_id = $1", tenant.id)
    month = datetime.now(UTC).strftime("%Y-%m")
    key = quota_key(str(tenant.id), month)
    quota = PLANS["starter"].calls_per_month
    await bus.set(key, quota - 10)
    await bus.set(quota_key(str(other.id), month), 10 * quota)  # free tenant: hard limit, never billed
    try:
        await overage.report_all(billing_pool, bus, runtime)
        assert metered(billing, customer) == 0  # within the quota

        await bus.set(key, quota + 1234)
        await overage.report_all(billing_pool, bus, runtime)
        assert metered(billing, customer) == 1234
        await overage.report_all(billing_pool, bus, runtime)  # nothing new: nothing sent
        assert metered(billing, customer) == 1234

        await bus.incrby(key, 100)
        await overage.report_all(billing_pool, bus, runtime)
        assert metered(billing, customer) == 1334

        # A crash after Stripe took a report but before billing recorded it: the next run sends
        # the very same report again, and Stripe counts it once.
        await bus.incrby(key, 66)
        identifier = f"{tenant.id}:{month}:1400"
        at = int(time.time())
        async with transaction(billing_pool) as tx:
            await repo.overage_report(tx, tenant.id, month, customer)
            await repo.set_overage_pending(tx, tenant.id, month, 66, identifier, at)
        await runtime.api.meter_event(
            event_name="catalytic_api_calls", customer=customer, value=66, identifier=identifier, timestamp=at
        )
        await overage.report_all(billing_pool, bus, runtime)
        assert metered(billing, customer) == 1400
        row = await db.fetchrow(
            "SELECT reported_units, pending_identifier FROM overage_reports"
            " WHERE tenant_id = $1 AND month = $2",
            tenant.id,
            month,
        )
        assert (row["reported_units"], row["pending_identifier"]) == (1400, None)

        # A counter rebuilt lower (Redis lost it) takes nothing back and sends nothing.
        await bus.set(key, quota + 5)
        await overage.report_all(billing_pool, bus, runtime)
        assert metered(billing, customer) == 1400
        assert await db.fetchval("SELECT count(*) FROM overage_reports WHERE tenant_id = $1", other.id) == 0
    finally:
        await bus.delete(key, quota_key(str(other.id), month))


def test_previous_month_is_reported_early_in_the_next() -> None:
    first = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
    months = overage.months_to_report(first)
    assert [m for m, _ in months] == ["2026-03", "2026-02"]
    assert months[1][1] == int(datetime(2026, 2, 28, 23, 59, 59, tzinfo=UTC).timestamp())
    assert [m for m, _ in overage.months_to_report(datetime(2026, 3, 20, tzinfo=UTC))] == ["2026-03"]
