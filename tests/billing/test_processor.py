"""The worker's event loop on a schema of its own: Stripe down -> the event waits and is retried,
nothing is lost or applied twice."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import pytest

from services.billing import repository as repo
from services.billing.catalog import CatalogCache
from services.billing.processor import EventProcessor
from services.billing.runtime import Billing as Runtime
from services.billing.settings import BillingSettings
from services.billing.stripe_api import StripeApi
from shared.db import Pool, create_pool, transaction
from shared.devstack import DevEnv
from shared.ids import uuid7
from shared.migrations import migrate
from shared.platform import service
from tests.billing.conftest import Billing, Tenant


@pytest.fixture
async def own_schema(peers: DevEnv) -> AsyncIterator[Pool]:
    """Billing's tables in a throwaway schema, out of reach of the platform's billing worker."""
    name = f"tb_{uuid7().hex[-12:]}"
    await migrate(peers.database_url, name, service("billing").migrations)
    pool = await create_pool(peers.database_url, schema=name, application_name="tests", max_size=3)
    yield pool
    await pool.close()
    conn = await asyncpg.connect(peers.database_url)
    try:
        await conn.execute(f"DROP SCHEMA {name} CASCADE")
    finally:
        await conn.close()


def _runtime(api_base: str) -> Runtime:
    settings = BillingSettings(app_env="test", stripe_api_base=api_base, stripe_timeout_s=2.0)
    api = StripeApi(settings)
    return Runtime(settings, api, CatalogCache(settings, api))


async def test_stripe_down_the_event_waits_then_applies_once(
    billing: Billing, tenant: Tenant, peers: DevEnv, own_schema: Pool
) -> None:
    paid = billing.subscribe(tenant, "professional")
    sub = billing.sdk.v1.subscriptions.retrieve(paid["subscription"])
    body = json.dumps(
        {
            "id": f"evt_proc{uuid7().hex[-12:]}",
            "object": "event",
            "type": "customer.subscription.updated",
            "created": int(time.time()),
            "data": {"object": {"id": sub.id, "object": "subscription", "customer": sub.customer}},
        }
    ).encode()
    event_id = json.loads(body)["id"]
    async with transaction(own_schema) as tx:
        await repo.add_customer(tx, tenant.id, str(sub.customer), None)
        stored = await repo.store_event(
            tx, event_id=event_id, type_="customer.subscription.updated", livemode=False,
            created=datetime.now(UTC), payload=body,
        )  # fmt: skip
        assert stored
        await tx.execute("UPDATE stripe_events SET attempts = 5")  # the next retry is half a minute away

    down = _runtime("http://127.0.0.1:9")  # nothing listens: Stripe is unreachable
    try:
        assert await EventProcessor(own_schema, down).process_one() is True
    finally:
        await down.api.close()
    async with own_schema.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT status, attempts, last_error, next_attempt_at > now() AS later FROM stripe_events"
        )
        assert (row["status"], row["attempts"], row["later"]) == ("pending", 6, True)
        assert "PaymentProviderUnavailable" in row["last_error"]
        assert await conn.fetchval("SELECT count(*) FROM outbox") == 0  # rolled back with the attempt
        assert await EventProcessor(own_schema, down).process_one() is False  # not due yet
        await conn.execute("UPDATE stripe_events SET next_attempt_at = now()")

    up = _runtime(billing.api_base)
    try:
        processor = EventProcessor(own_schema, up)
        assert await processor.drain() == 1
        assert await processor.drain() == 0
    finally:
        await up.api.close()
    async with own_schema.acquire() as conn:
        row = await conn.fetchrow("SELECT status, attempts, last_error FROM stripe_events")
        assert (row["status"], row["attempts"], row["last_error"]) == ("processed", 7, None)
        state = await conn.fetchrow("SELECT tenant_id, plan, status FROM subscriptions")
        assert (state["tenant_id"], state["plan"], state["status"]) == (tenant.id, "professional", "active")
        types = await conn.fetch("SELECT type FROM outbox")
        assert [r["type"] for r in types] == ["billing.subscription.activated"]


async def test_an_event_that_keeps_failing_is_given_up_and_kept(peers: DevEnv, own_schema: Pool) -> None:
    body = json.dumps(
        {
            "id": "evt_giveup",
            "type": "invoice.paid",
            "created": 1,
            "data": {"object": {"id": "in_x", "customer": "c"}},
        }
    ).encode()
    async with transaction(own_schema) as tx:
        await repo.store_event(
            tx,
            event_id="evt_giveup",
            type_="invoice.paid",
            livemode=False,
            created=datetime.now(UTC),
            payload=body,
        )
        await tx.execute("UPDATE stripe_events SET attempts = 24")
    down = _runtime("http://127.0.0.1:9")
    try:
        assert await EventProcessor(own_schema, down).process_one() is True
    finally:
        await down.api.close()
    async with own_schema.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT status, attempts, payload FROM stripe_events WHERE id = 'evt_giveup'"
        )
    assert (row["status"], row["attempts"], bytes(row["payload"])) == ("failed", 25, body)
