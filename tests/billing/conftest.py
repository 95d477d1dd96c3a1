"""Fixtures of the billing tests: the running platform, the fake Stripe through the official SDK,
signed webhooks, and what billing wrote (its schema, its stream)."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import asyncpg
import httpx
import pytest
import stripe
from redis.asyncio import Redis

from shared.devstack import DevEnv
from shared.devstack.fakestripe.signing import sign
from shared.events import BILLING_STREAM, Event, decode
from shared.http.app import redis_client
from tests.platform import Platform
from tests.support import anonymous, as_caller

T = TypeVar("T")
KEY = "sk_test_catalytic_local"
DEADLINE_S = 20.0


def wait_for(check: Callable[[], T | None], what: str, timeout: float = DEADLINE_S) -> T:
    """Poll `check` until it answers something truthy; fail with `what` at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@dataclass(frozen=True)
class Tenant:
    id: uuid.UUID
    user_id: uuid.UUID

    def headers(self, role: str = "owner", **kw: Any) -> dict[str, str]:
        return as_caller("billing", tenant_id=self.id, user_id=self.user_id, role=role, **kw)


@dataclass(frozen=True)
class Billing:
    """Billing as the gateway and Stripe see it, plus the fake Stripe behind it."""

    url: str
    env: dict[str, str]
    sdk: stripe.StripeClient
    api_base: str

    @property
    def secrets(self) -> list[str]:
        return self.env["STRIPE_WEBHOOK_SECRET"].split(",")

    def get(self, path: str, tenant: Tenant, role: str = "owner", **params: Any) -> httpx.Response:
        return httpx.get(f"{self.url}{path}", headers=tenant.headers(role), params=params, timeout=30)

    def post(self, path: str, tenant: Tenant, role: str = "owner", json: Any = None) -> httpx.Response:
        return httpx.post(f"{self.url}{path}", headers=tenant.headers(role), json=json, timeout=30)

    def webhook(
        self,
        body: bytes,
        *,
        secret: str | None = None,
        timestamp: int | None = None,
        signature: str | None = None,
    ) -> httpx.Response:
        """POST a webhook signed the way Stripe signs (unless `signature` is given)."""
        headers = {"Content-Type": "application/json", **anonymous("billing")}
        given = signature is not None
        headers["Stripe-Signature"] = signature if given else sign(body, secret or self.secrets[0], timestamp)
        return httpx.post(f"{self.url}/webhooks/stripe", content=body, headers=headers, timeout=30)

    def deliver(self, event_id: str, times: int = 1) -> list[httpx.Response]:
        """Deliver an event the fake recorded (its stored JSON, re-signed now)."""
        body = self.event_body(event_id)
        return [self.webhook(body) for _ in range(times)]

    def event_body(self, event_id: str) -> bytes:
        event = self.sdk.v1.events.retrieve(event_id)
        return json.dumps(event.to_dict(), sort_keys=True).encode()

    def helper(self, path: str, *, deliver: bool = True, **params: Any) -> dict[str, Any]:
        """Call a fake-Stripe test helper; deliver the events it caused to billing unless told not to."""
        body = dict(params)
        if deliver:
            body.update(
                deliver_to=f"{self.url}/webhooks/stripe",
                webhook_secret=self.secrets[0],
                webhook_headers=anonymous("billing"),
            )
        resp = httpx.post(
            f"{self.api_base}/v1/test_helpers/{path}",
            json=body,
            headers={"Authorization": f"Bearer {KEY}"},
            timeout=60,
        )
        assert resp.status_code == 200, resp.text
        reply: dict[str, Any] = resp.json()
        for d in reply.get("fake_deliveries", []):
            assert d["status"] == 200, d
        return reply

    def complete(self, session_id: str, *, deliver: bool = True) -> dict[str, Any]:
        return self.helper(f"checkout/sessions/{session_id}/complete", deliver=deliver)

    def subscribe(self, tenant: Tenant, plan: str = "starter") -> dict[str, Any]:
        """Checkout, pay, and wait until billing shows the subscription active."""
        resp = self.post("/billing/checkout", tenant, json={"plan": plan})
        assert resp.status_code == 201, resp.text
        done = self.complete(resp.json()["session_id"])
        wait_for(lambda: self.subscription(tenant)["status"] == "active", "an active subscription")
        return done

    def subscription(self, tenant: Tenant) -> dict[str, Any]:
        resp = self.get("/billing/subscription", tenant)
        assert resp.status_code == 200, resp.text
        got: dict[str, Any] = resp.json()
        return got


@pytest.fixture(scope="session")
def billing(platform: Platform, peers: DevEnv) -> Iterator[Billing]:
    sdk = stripe.StripeClient(
        KEY,
        base_addresses={"api": peers.stripe_api_base},
        http_client=stripe.HTTPXClient(allow_sync_methods=True),
    )
    yield Billing(platform.url("billing"), platform.env, sdk, peers.stripe_api_base)


@pytest.fixture
def tenant() -> Tenant:
    return Tenant(uuid.uuid4(), uuid.uuid4())


@pytest.fixture
def other() -> Tenant:
    return Tenant(uuid.uuid4(), uuid.uuid4())


@pytest.fixture
async def db(peers: DevEnv, platform: Platform) -> AsyncIterator[asyncpg.Connection]:
    """The billing schema as its owner, to check what the API does not show."""
    conn = await asyncpg.connect(peers.database_url, server_settings={"search_path": "billing"})
    yield conn
    await conn.close()


@pytest.fixture
async def bus(peers: DevEnv) -> AsyncIterator[Redis]:
    client = redis_client(peers.redis_url)
    yield client
    await client.aclose()


async def stream_events(bus: Redis, tenant: Tenant, type_: str | None = None) -> list[Event[Any]]:
    """The tenant's events on billing.events (published by billing's outbox relay)."""
    found = []
    for _, fields in await bus.xrange(BILLING_STREAM):
        event = decode(fields[b"event"])
        if event.tenant_id == tenant.id and (type_ is None or event.type == type_):
            found.append(event)
    return found


async def eventually(check: Callable[[], Awaitable[T | None]], what: str, timeout: float = DEADLINE_S) -> T:
    """Await `check` until it answers something truthy; fail with `what` at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        got = await check()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def outbox_count(db: asyncpg.Connection, tenant: Tenant, type_: str) -> int:
    """Events billing wrote for the tenant (published or not): the count that must be exact."""
    value = await db.fetchval(
        "SELECT count(*) FROM outbox WHERE type = $2"
        " AND convert_from(payload, 'UTF8')::jsonb->>'tenant_id' = $1",
        str(tenant.id),
        type_,
    )
    return int(value)


async def settled(db: asyncpg.Connection, timeout: float = DEADLINE_S) -> None:
    """Wait until billing's worker has tried every received Stripe event once and its relay has
    published what that wrote (events that failed and wait for a retry are not waited for)."""
    deadline = time.monotonic() + timeout
    while True:
        pending = await db.fetchval(
            "SELECT (SELECT count(*) FROM stripe_events WHERE status = 'pending' AND attempts = 0)"
            " + (SELECT count(*) FROM outbox WHERE published_at IS NULL)"
        )
        if pending == 0:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{pending} stripe events or outbox rows still pending")
        await asyncio.sleep(0.05)
