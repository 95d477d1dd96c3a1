"""What billing's code needs besides a connection: settings, the Stripe client, the catalog."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from services.billing.catalog import CatalogCache
from services.billing.settings import BillingSettings, get_settings
from services.billing.stripe_api import StripeApi
from shared.http.app import Resources

_KEY = "billing"

# The SDK and its HTTP client log every call at INFO; billing logs what matters itself.
for _name in ("stripe", "httpx"):
    logging.getLogger(_name).setLevel(logging.WARNING)


@dataclass(frozen=True)
class Billing:
    settings: BillingSettings
    api: StripeApi
    catalog: CatalogCache


def billing_of(resources: Resources) -> Billing:
    """One per process, kept with the process's resources (HTTP app or worker)."""
    found = resources.extra.get(_KEY)
    if found is None:
        settings = resources.settings if isinstance(resources.settings, BillingSettings) else get_settings()
        api = StripeApi(settings)
        found = resources.extra[_KEY] = Billing(settings, api, CatalogCache(settings, api))
    assert isinstance(found, Billing)
    return found


async def close(resources: Resources) -> None:
    found = resources.extra.pop(_KEY, None)
    if isinstance(found, Billing):
        await found.api.close()
