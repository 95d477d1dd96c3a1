"""The plan catalog (seed figures). Stripe price ids come from billing's configuration."""

from __future__ import annotations

import msgspec


class Plan(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    name: str
    price_cents: int  # per month, USD
    requests_per_minute: int
    calls_per_month: int
    seats: int
    api_keys: int
    overage_cents_per_1000: int = 0  # metered calls beyond the monthly quota; 0 = hard limit


PLANS: dict[str, Plan] = {
    p.id: p
    for p in (
        Plan(
            id="free",
            name="Free",
            price_cents=0,
            requests_per_minute=60,
            calls_per_month=1_000,
            seats=2,
            api_keys=2,
        ),
        Plan(
            id="starter",
            name="Starter",
            price_cents=2_900,
            requests_per_minute=300,
            calls_per_month=50_000,
            seats=5,
            api_keys=5,
            overage_cents_per_1000=50,
        ),
        Plan(
            id="professional",
            name="Professional",
            price_cents=9_900,
            requests_per_minute=1_000,
            calls_per_month=500_000,
            seats=20,
            api_keys=25,
            overage_cents_per_1000=30,
        ),
        Plan(
            id="enterprise",
            name="Enterprise",
            price_cents=29_900,
            requests_per_minute=5_000,
            calls_per_month=5_000_000,
            seats=100,
            api_keys=100,
            overage_cents_per_1000=20,
        ),
    )
}
DEFAULT_PLAN = "free"


def plan(plan_id: str | None) -> Plan:
    """Unknown or missing plans fall back to Free: never grant more than was paid for."""
    return PLANS.get(plan_id or DEFAULT_PLAN, PLANS[DEFAULT_PLAN])


def quota_key(tenant_id: str, month: str) -> str:
    """Redis key of a tenant's monthly call counter (`month` as YYYY-MM); gateway and usage share it."""
    return f"quota:{tenant_id}:{month}"
