"""Rate limits and quotas: exact under concurrency, shared by every gateway, plan changes applied."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime

import httpx
import redis

from shared import events
from shared.plans import PLANS, quota_key
from tests.gateway.conftest import ANONYMOUS_PER_MINUTE, Stack
from tests.gateway.support import (
    async_client,
    bearer,
    client,
    mint,
    new_id,
    number,
    plan_changed,
    poll,
    problem,
    publish,
    random_ip,
)

RATE_HEADERS = (
    "ratelimit-limit",
    "ratelimit-remaining",
    "ratelimit-reset",
    "x-ratelimit-limit",
    "x-ratelimit-remaining",
    "x-ratelimit-reset",
)


def _month() -> str:
    return datetime.now(UTC).strftime("%Y-%m")


async def _hammer(
    bases: tuple[str, ...], headers: dict[str, str], clients: int, each: int
) -> list[httpx.Response]:
    """`clients` concurrent clients (spread over the gateways), each sending `each` requests."""

    async def one(i: int) -> list[httpx.Response]:
        async with async_client(bases[i % len(bases)]) as c:
            return [await c.get("/echo", headers=headers) for _ in range(each)]

    batches = await asyncio.gather(*(one(i) for i in range(clients)))
    return [r for batch in batches for r in batch]


def test_rate_limit_is_exact_under_50_concurrent_clients(gw: Stack, rds: redis.Redis) -> None:
    tenant = new_id()
    limit = PLANS["free"].requests_per_minute
    responses = asyncio.run(_hammer(gw.gateways, bearer(mint(tenant=tenant)), clients=50, each=3))
    passed = [r for r in responses if r.status_code == 200]
    limited = [r for r in responses if r.status_code == 429]
    assert len(passed) == limit  # never more than the limit in the window, across both gateways
    assert len(limited) == 150 - limit
    for resp in limited:
        body = problem(resp)
        assert body["code"] == "rate_limited"
        assert int(resp.headers["retry-after"]) >= 1
        assert resp.headers["ratelimit-remaining"] == "0"
        assert resp.headers["ratelimit-limit"] == str(limit)
    remaining = sorted(int(r.headers["ratelimit-remaining"]) for r in passed)
    assert remaining == list(range(limit))  # each pass saw a distinct count
    assert number(rds, quota_key(tenant, _month())) == limit  # only passes are counted


def test_rate_limit_headers_on_every_kind_of_response(gw: Stack) -> None:
    with client(gw.gateway) as c:
        ok = c.get("/echo", headers=bearer(mint()))
        unauthorized = c.get("/echo")
        not_found = c.get("/nowhere")
        public = c.post("/auth/login", json={})
    for resp in (ok, unauthorized, not_found, public):
        for name in RATE_HEADERS:
            assert name in resp.headers, (resp.status_code, name)
    assert ok.headers["ratelimit-limit"] == str(PLANS["free"].requests_per_minute)
    assert unauthorized.headers["ratelimit-limit"] == str(ANONYMOUS_PER_MINUTE)
    reset = int(ok.headers["x-ratelimit-reset"])
    assert time.time() < reset <= time.time() + 61  # X- variant: unix time; RateLimit-Reset: seconds
    assert 1 <= int(ok.headers["ratelimit-reset"]) <= 60
    assert ok.headers["x-quota-limit"] == str(PLANS["free"].calls_per_month)


def test_anonymous_limit_is_per_client_ip(gw: Stack) -> None:
    ip = random_ip()
    with client(gw.gateway, ip=ip) as c:
        statuses = [c.post("/auth/login", json={}).status_code for _ in range(ANONYMOUS_PER_MINUTE + 5)]
        limited = c.post("/auth/login", json={})
        # Stripe's webhook is public but not limited per IP (Stripe retries, billing checks signatures).
        webhook = [c.post("/webhooks/stripe", json={}).status_code for _ in range(5)]
    assert statuses.count(200) == ANONYMOUS_PER_MINUTE
    assert statuses.count(429) == 5
    assert problem(limited)["code"] == "rate_limited"
    assert webhook == [200] * 5
    with client(gw.gateway, ip=random_ip()) as other:
        assert other.post("/auth/login", json={}).status_code == 200


def test_failed_credentials_count_against_the_ip(gw: Stack) -> None:
    with client(gw.gateway, ip=random_ip()) as c:
        statuses = [
            c.get("/echo", headers=bearer("nope")).status_code for _ in range(ANONYMOUS_PER_MINUTE + 3)
        ]
    assert statuses.count(401) == ANONYMOUS_PER_MINUTE
    assert statuses.count(429) == 3


def test_free_quota_is_a_hard_limit_with_its_own_code(gw: Stack, rds: redis.Redis) -> None:
    tenant = new_id()
    quota = PLANS["free"].calls_per_month
    rds.set(quota_key(tenant, _month()), quota - 1)
    token = mint(tenant=tenant)
    with client(gw.gateway) as c:
        last = c.get("/echo", headers=bearer(token))
        over = c.get("/echo", headers=bearer(token))
        unmetered = c.get("/stream?size=10", headers=bearer(token))  # not a metered route
    assert last.status_code == 200
    assert last.headers["x-quota-remaining"] == "0"
    assert over.status_code == 429
    body = problem(over)
    assert body["code"] == "quota_exceeded"
    assert int(over.headers["retry-after"]) > 0
    assert unmetered.status_code == 200
    assert number(rds, quota_key(tenant, _month())) == quota


def test_paid_plans_go_over_quota_as_overage(gw: Stack, rds: redis.Redis) -> None:
    tenant = new_id()
    quota = PLANS["starter"].calls_per_month
    rds.set(quota_key(tenant, _month()), quota)
    with client(gw.gateway) as c:
        resp = c.get("/echo", headers=bearer(mint(tenant=tenant, plan="starter")))
    assert resp.status_code == 200
    assert resp.headers["x-quota-remaining"] == "0"
    assert number(rds, quota_key(tenant, _month())) == quota + 1


def test_plan_upgrade_from_billing_raises_the_limit_on_every_gateway(gw: Stack, rds: redis.Redis) -> None:
    tenant = new_id()
    token = mint(tenant=tenant, plan="free")  # the token still says free
    free = PLANS["free"].requests_per_minute
    responses = asyncio.run(_hammer(gw.gateways, bearer(token), clients=10, each=free // 10 + 1))
    assert sum(r.status_code == 200 for r in responses) == free
    plan_changed(rds, tenant, "professional")
    for base in gw.gateways:
        with client(base) as c:
            resp = poll(
                lambda c=c: c.get("/echo", headers=bearer(token)), until=lambda r: r.status_code == 200
            )
        assert resp.status_code == 200, resp.text
        assert resp.headers["ratelimit-limit"] == str(PLANS["professional"].requests_per_minute)
        assert resp.json()["caller"]["plan"] == "professional"  # upstreams learn the plan too
    assert rds.get(f"tenant:plan:{tenant}") == b"professional"


def test_cancellation_returns_the_tenant_to_free_limits(gw: Stack, rds: redis.Redis) -> None:
    tenant = new_id()
    token = mint(tenant=tenant, plan="enterprise")
    with client(gw.gateway) as c:
        assert c.get("/echo", headers=bearer(token)).headers["ratelimit-limit"] == "5000"
        payload = events.SubscriptionCanceled(subscription_id="sub_x", plan="enterprise", status="canceled")
        publish(rds, events.new_event(payload, tenant_id=uuid.UUID(tenant)))
        resp = poll(
            lambda: c.get("/echo", headers=bearer(token)),
            until=lambda r: r.headers.get("ratelimit-limit") == str(PLANS["free"].requests_per_minute),
        )
    assert resp.headers["ratelimit-limit"] == str(PLANS["free"].requests_per_minute)
    assert resp.json()["caller"]["plan"] == "free"
