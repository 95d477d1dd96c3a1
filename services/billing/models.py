"""The billing service's records, as its repository returns them and its API shows them."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

import msgspec

# Statuses in which the tenant has the plan it pays for (past_due: Stripe is still retrying).
ENTITLED = frozenset({"active", "trialing", "past_due"})


def from_unix(seconds: int | None) -> datetime | None:
    """Stripe's unix timestamps (0 and null mean none)."""
    return datetime.fromtimestamp(seconds, UTC) if seconds else None


class SubscriptionState(msgspec.Struct, frozen=True, kw_only=True):
    subscription_id: str
    tenant_id: UUID
    customer_id: str
    plan: str
    price_id: str | None
    status: str
    current_period_end: datetime | None
    cancel_at_period_end: bool
    canceled_at: datetime | None
    trial_end: datetime | None
    created_at: datetime

    @property
    def entitled(self) -> bool:
        return self.status in ENTITLED


class CheckoutRecord(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    tenant_id: UUID
    plan: str
    seq: int
    url: str
    status: str
    expires_at: datetime | None


class Invoice(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    subscription_id: str | None
    status: str
    number: str | None
    currency: str
    amount_due: int
    amount_paid: int
    attempt_count: int
    next_payment_attempt: datetime | None
    hosted_invoice_url: str | None
    invoice_pdf: str | None
    period_start: datetime | None
    period_end: datetime | None
    created_at: datetime


class StoredEvent(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    type: str
    payload: bytes
    attempts: int


class BillableTenant(msgspec.Struct, frozen=True, kw_only=True):
    tenant_id: UUID
    customer_id: str
    plan: str


class OverageReport(msgspec.Struct, frozen=True, kw_only=True):
    reported_units: int
    pending_units: int | None
    pending_identifier: str | None
    pending_timestamp: int | None


class Contact(msgspec.Struct, frozen=True, kw_only=True):
    email: str | None
    tenant_name: str | None


# --- what the API answers ------------------------------------------------------------------


class PlanInfo(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    name: str
    price_cents: int
    currency: str
    interval: str
    requests_per_minute: int
    calls_per_month: int
    seats: int
    api_keys: int
    overage_cents_per_1000: int
    purchasable: bool


class CheckoutSession(msgspec.Struct, frozen=True, kw_only=True):
    session_id: str
    url: str


class PortalSession(msgspec.Struct, frozen=True, kw_only=True):
    url: str


class SubscriptionView(msgspec.Struct, frozen=True, kw_only=True):
    plan: str
    status: str  # a Stripe status, or "none" for a tenant that never subscribed
    subscription_id: str | None = None
    current_period_end: datetime | None = None
    cancel_at_period_end: bool = False
    trial_end: datetime | None = None
    canceled_at: datetime | None = None


class InvoicePage(msgspec.Struct, frozen=True, kw_only=True):
    data: list[Invoice]
    has_more: bool


class WebhookReceipt(msgspec.Struct, frozen=True, kw_only=True):
    received: bool
    event_id: str
    duplicate: bool
