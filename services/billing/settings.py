"""Settings of the billing service (env prefix BILLING_; Stripe ones also unprefixed)."""

from __future__ import annotations

from shared.plans import PLANS
from shared.settings import CommonSettings, load_settings

PREFIX = "BILLING"
LOCAL_STRIPE_KEY = "sk_test_catalytic_local"  # any sk_ key opens the fake Stripe


class BillingSettings(CommonSettings, frozen=True, kw_only=True):
    port: int = 8002
    # STRIPE_API_KEY (secret key); STRIPE_API_BASE points the SDK at the fake in dev and tests.
    stripe_api_key: str = ""
    stripe_api_base: str = ""
    # Webhook signing secrets; several are accepted at once while one is being rolled.
    stripe_webhook_secrets: tuple[str, ...] = ()
    stripe_webhook_secret: tuple[str, ...] = ()
    stripe_webhook_tolerance_s: int = 300
    stripe_timeout_s: float = 20.0
    # Price ids of the paid plans (dev/test create missing ones in the fake by lookup key).
    stripe_price_starter: str = ""
    stripe_price_professional: str = ""
    stripe_price_enterprise: str = ""
    # Optional metered prices billing calls beyond the plan's quota (added to checkout).
    stripe_overage_price_starter: str = ""
    stripe_overage_price_professional: str = ""
    stripe_overage_price_enterprise: str = ""
    stripe_meter_event_name: str = "catalytic_api_calls"
    # Where the customer's browser lands after Checkout and the portal.
    public_url: str = "http://127.0.0.1:8000"
    checkout_success_url: str = ""
    checkout_cancel_url: str = ""
    portal_return_url: str = ""
    trial_days: int = 0
    webhook_workers: int = 4
    webhook_max_attempts: int = 25
    stripe_events_keep_days: int = 30
    overage_every_minutes: int = 15

    @property
    def webhook_secrets(self) -> tuple[str, ...]:
        return tuple(
            dict.fromkeys(s for s in (*self.stripe_webhook_secrets, *self.stripe_webhook_secret) if s)
        )

    @property
    def api_key(self) -> str:
        if self.stripe_api_key or self.is_production:
            return self.stripe_api_key
        return LOCAL_STRIPE_KEY

    @property
    def configured_prices(self) -> dict[str, str]:
        """Plan id -> configured price id (paid plans only, only those set)."""
        found = {
            "starter": self.stripe_price_starter,
            "professional": self.stripe_price_professional,
            "enterprise": self.stripe_price_enterprise,
        }
        return {plan: price for plan, price in found.items() if price}

    @property
    def overage_prices(self) -> dict[str, str]:
        found = {
            "starter": self.stripe_overage_price_starter,
            "professional": self.stripe_overage_price_professional,
            "enterprise": self.stripe_overage_price_enterprise,
        }
        return {plan: price for plan, price in found.items() if price}

    @property
    def success_url(self) -> str:
        default = f"{self.public_url}/billing/checkout/success?session_id={{CHECKOUT_SESSION_ID}}"
        return self.checkout_success_url or default

    @property
    def cancel_url(self) -> str:
        return self.checkout_cancel_url or f"{self.public_url}/billing/checkout/canceled"

    @property
    def return_url(self) -> str:
        return self.portal_return_url or f"{self.public_url}/billing"

    def problems(self) -> list[str]:
        found = super().problems()
        if self.is_production:
            if not self.stripe_api_key.startswith(("sk_live_", "sk_test_", "rk_live_", "rk_test_")):
                found.append("STRIPE_API_KEY (a Stripe secret or restricted key) is required in production")
            if not self.webhook_secrets:
                found.append(
                    "STRIPE_WEBHOOK_SECRET (or BILLING_STRIPE_WEBHOOK_SECRETS) is required in production"
                )
            paid = [p for p, plan in PLANS.items() if plan.price_cents > 0]
            found += [
                f"BILLING_STRIPE_PRICE_{p.upper()} is required in production"
                for p in paid
                if p not in self.configured_prices
            ]
        if not 1 <= self.webhook_workers <= 64:
            found.append("BILLING_WEBHOOK_WORKERS must be between 1 and 64")
        if not 1 <= self.overage_every_minutes <= 60 or 60 % self.overage_every_minutes:
            found.append("BILLING_OVERAGE_EVERY_MINUTES must divide 60")
        return found


def get_settings() -> BillingSettings:
    return load_settings(BillingSettings, PREFIX)
