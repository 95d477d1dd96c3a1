"""Settings of the billing service (env prefix BILLING_)."""

from __future__ import annotations

from shared.settings import CommonSettings, load_settings

PREFIX = "BILLING"


class BillingSettings(CommonSettings, frozen=True, kw_only=True):
    port: int = 8002


def get_settings() -> BillingSettings:
    return load_settings(BillingSettings, PREFIX)
