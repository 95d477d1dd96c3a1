"""Plans (shared.plans) and their Stripe prices: price ids come from configuration.

Outside production a paid plan without a configured price gets one from Stripe by lookup key
(`catalytic_<plan>_monthly`), created when missing: in dev and tests that is the fake Stripe,
so the whole paid flow works offline without anyone copying ids around. Production refuses to
start without every price id (settings), and never creates catalog objects.
"""

from __future__ import annotations

import asyncio

from services.billing.settings import BillingSettings
from services.billing.stripe_api import StripeApi
from shared.plans import PLANS


class Catalog:
    def __init__(self, prices: dict[str, str], overage: dict[str, str]) -> None:
        self.prices = prices
        self.overage = overage
        self._plans = {price: plan for plan, price in prices.items()}

    def price_for(self, plan: str) -> str | None:
        return self.prices.get(plan)

    def plan_for(self, price_id: str | None) -> str | None:
        return self._plans.get(price_id or "")

    def checkout_prices(self, plan: str) -> list[str]:
        """The plan's flat price, then its metered overage price when one is configured."""
        flat = self.prices[plan]
        return [flat, self.overage[plan]] if plan in self.overage else [flat]


def lookup_key(plan: str) -> str:
    return f"catalytic_{plan}_monthly"


async def resolve(settings: BillingSettings, api: StripeApi) -> Catalog:
    prices = dict(settings.configured_prices)
    if not settings.is_production:
        for plan in PLANS.values():
            if plan.price_cents <= 0 or plan.id in prices:
                continue
            found = await api.price_by_lookup_key(lookup_key(plan.id))
            if found is None:
                found = await api.create_price(
                    lookup_key=lookup_key(plan.id), name=plan.name, unit_amount=plan.price_cents, plan=plan.id
                )
            prices[plan.id] = found.id
        await api.ensure_meter(settings.stripe_meter_event_name)
    return Catalog(prices, settings.overage_prices)


class CatalogCache:
    """Resolved once per process, on first use (Stripe need not be up when the service starts)."""

    def __init__(self, settings: BillingSettings, api: StripeApi) -> None:
        self.settings = settings
        self.api = api
        self._catalog: Catalog | None = None
        self._lock = asyncio.Lock()

    async def get(self) -> Catalog:
        if self._catalog is None:
            async with self._lock:
                if self._catalog is None:
                    self._catalog = await resolve(self.settings, self.api)
        return self._catalog
