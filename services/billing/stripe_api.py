"""The Stripe calls billing makes, through the official SDK, and the shapes it reads back.

Every write carries an idempotency key derived from the tenant and the intent, so a retry
(ours, the SDK's, or a replayed request) never creates a second customer, session or usage
record. Objects are read into small tolerant Structs: only the fields billing uses, accepting
both the current API shape (period on the subscription item, invoice -> parent -> subscription)
and the older one.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any, TypeVar

import msgspec
import stripe

from services.billing.errors import PaymentProviderError, PaymentProviderUnavailable
from services.billing.settings import BillingSettings

T = TypeVar("T")


class _Ref(msgspec.Struct, frozen=True):
    id: str


class _Item(msgspec.Struct, frozen=True):
    price: _Ref | None = None
    plan: _Ref | None = None
    current_period_end: int | None = None


class _Items(msgspec.Struct, frozen=True):
    data: list[_Item] = msgspec.field(default_factory=list)


class StripeSubscription(msgspec.Struct, frozen=True):
    id: str
    customer: str
    status: str
    created: int = 0
    items: _Items = msgspec.field(default_factory=_Items)
    metadata: dict[str, str] = msgspec.field(default_factory=dict)
    cancel_at_period_end: bool = False
    cancel_at: int | None = None
    canceled_at: int | None = None
    ended_at: int | None = None
    current_period_end: int | None = None
    trial_end: int | None = None

    @property
    def price_id(self) -> str | None:
        if not self.items.data:
            return None
        item = self.items.data[0]
        ref = item.price or item.plan
        return ref.id if ref else None

    @property
    def period_end(self) -> int | None:
        if self.items.data and self.items.data[0].current_period_end:
            return self.items.data[0].current_period_end
        return self.current_period_end


class _SubscriptionDetails(msgspec.Struct, frozen=True):
    subscription: str | None = None


class _Parent(msgspec.Struct, frozen=True):
    subscription_details: _SubscriptionDetails | None = None


class StripeInvoice(msgspec.Struct, frozen=True):
    id: str
    customer: str
    status: str | None = None
    created: int = 0
    amount_due: int = 0
    amount_paid: int = 0
    currency: str = "usd"
    number: str | None = None
    hosted_invoice_url: str | None = None
    invoice_pdf: str | None = None
    attempt_count: int = 0
    next_payment_attempt: int | None = None
    period_start: int | None = None
    period_end: int | None = None
    subscription: str | None = None
    parent: _Parent | None = None

    @property
    def subscription_id(self) -> str | None:
        if self.parent and self.parent.subscription_details:
            return self.parent.subscription_details.subscription or self.subscription
        return self.subscription


class StripeCheckoutSession(msgspec.Struct, frozen=True):
    id: str
    status: str | None = None
    mode: str | None = None
    payment_status: str | None = None
    customer: str | None = None
    subscription: str | None = None
    client_reference_id: str | None = None
    url: str | None = None
    expires_at: int | None = None
    metadata: dict[str, str] = msgspec.field(default_factory=dict)


class StripeCustomer(msgspec.Struct, frozen=True):
    id: str
    metadata: dict[str, str] = msgspec.field(default_factory=dict)
    deleted: bool = False


class StripePrice(msgspec.Struct, frozen=True):
    id: str
    lookup_key: str | None = None
    unit_amount: int | None = None
    active: bool = True


def _read(obj: Any, shape: type[T]) -> T:
    return msgspec.convert(obj.to_dict(), shape, strict=False)


class StripeApi:
    def __init__(self, settings: BillingSettings) -> None:
        bases: dict[str, str] = {}
        if settings.stripe_api_base:
            bases = {"api": settings.stripe_api_base, "meter_events": settings.stripe_api_base}
        self._http = stripe.HTTPXClient(timeout=settings.stripe_timeout_s)
        self.client = stripe.StripeClient(
            settings.api_key,
            base_addresses=bases,  # type: ignore[arg-type]
            http_client=self._http,
            max_network_retries=2,  # the SDK retries with the same idempotency key
        )
        self.v1 = self.client.v1

    async def call(self, pending: Awaitable[T]) -> T:
        """Await a Stripe call; turn its failures into the service's errors."""
        try:
            return await pending
        except (stripe.APIConnectionError, stripe.RateLimitError) as exc:
            raise PaymentProviderUnavailable(str(exc.user_message or exc)) from exc
        except stripe.APIError as exc:
            raise PaymentProviderUnavailable(str(exc.user_message or exc)) from exc
        except stripe.StripeError as exc:
            if exc.http_status is not None and exc.http_status >= 500:
                raise PaymentProviderUnavailable(str(exc.user_message or exc)) from exc
            raise PaymentProviderError(
                str(exc.user_message or exc), extra={"stripe_status": exc.http_status}
            ) from exc

    # --- reads ---------------------------------------------------------------------------

    async def subscription(self, subscription_id: str) -> StripeSubscription:
        return _read(
            await self.call(self.v1.subscriptions.retrieve_async(subscription_id)), StripeSubscription
        )

    async def invoice(self, invoice_id: str) -> StripeInvoice:
        return _read(await self.call(self.v1.invoices.retrieve_async(invoice_id)), StripeInvoice)

    async def checkout_session(self, session_id: str) -> StripeCheckoutSession:
        got = await self.call(self.v1.checkout.sessions.retrieve_async(session_id))
        return _read(got, StripeCheckoutSession)

    async def customer(self, customer_id: str) -> StripeCustomer:
        return _read(await self.call(self.v1.customers.retrieve_async(customer_id)), StripeCustomer)

    # --- writes (each with its idempotency key) -------------------------------------------

    async def create_customer(self, *, tenant_id: str, email: str | None, name: str | None, key: str) -> str:
        params: dict[str, Any] = {"metadata": {"tenant_id": tenant_id}}
        if email:
            params["email"] = email
        if name:
            params["name"] = name
        got = await self.call(self.v1.customers.create_async(params, {"idempotency_key": key}))  # type: ignore[arg-type]
        return str(got.id)

    async def create_checkout_session(
        self,
        *,
        customer: str,
        tenant_id: str,
        plan: str,
        prices: list[str],
        success_url: str,
        cancel_url: str,
        trial_days: int,
        key: str,
    ) -> StripeCheckoutSession:
        subscription_data: dict[str, Any] = {"metadata": {"tenant_id": tenant_id, "plan": plan}}
        if trial_days > 0:
            subscription_data["trial_period_days"] = trial_days
        params: dict[str, Any] = {
            "mode": "subscription",
            "customer": customer,
            "client_reference_id": tenant_id,
            "line_items": [{"price": prices[0], "quantity": 1}, *({"price": p} for p in prices[1:])],
            "success_url": success_url,
            "cancel_url": cancel_url,
            "metadata": {"tenant_id": tenant_id, "plan": plan},
            "subscription_data": subscription_data,
        }
        got = await self.call(self.v1.checkout.sessions.create_async(params, {"idempotency_key": key}))  # type: ignore[arg-type]
        return _read(got, StripeCheckoutSession)

    async def create_portal_session(self, *, customer: str, return_url: str, key: str) -> str:
        params: dict[str, Any] = {"customer": customer, "return_url": return_url}
        got = await self.call(self.v1.billing_portal.sessions.create_async(params, {"idempotency_key": key}))  # type: ignore[arg-type]
        return str(got.url)

    async def cancel_at_period_end(self, subscription_id: str, *, key: str) -> StripeSubscription:
        params: dict[str, Any] = {"cancel_at_period_end": True}
        pending = self.v1.subscriptions.update_async(subscription_id, params, {"idempotency_key": key})  # type: ignore[arg-type]
        return _read(await self.call(pending), StripeSubscription)

    async def meter_event(
        self, *, event_name: str, customer: str, value: int, identifier: str, timestamp: int
    ) -> None:
        params: dict[str, Any] = {
            "event_name": event_name,
            "payload": {"stripe_customer_id": customer, "value": str(value)},
            "identifier": identifier,
            "timestamp": timestamp,
        }
        # The identifier dedupes at Stripe; the same idempotency key replays our first answer.
        await self.call(self.v1.billing.meter_events.create_async(params, {"idempotency_key": identifier}))  # type: ignore[arg-type]

    # --- catalog (dev and test only create what is missing) --------------------------------

    async def price_by_lookup_key(self, lookup_key: str) -> StripePrice | None:
        got = await self.call(self.v1.prices.list_async({"lookup_keys": [lookup_key], "active": True}))
        return _read(got.data[0], StripePrice) if got.data else None

    async def create_price(self, *, lookup_key: str, name: str, unit_amount: int, plan: str) -> StripePrice:
        params: dict[str, Any] = {
            "currency": "usd",
            "unit_amount": unit_amount,
            "recurring": {"interval": "month"},
            "product_data": {"name": f"catalytic {name}", "metadata": {"plan": plan}},
            "lookup_key": lookup_key,
            "metadata": {"plan": plan},
        }
        key = f"catalytic:catalog:{lookup_key}"
        got = await self.call(self.v1.prices.create_async(params, {"idempotency_key": key}))  # type: ignore[arg-type]
        return _read(got, StripePrice)

    async def ensure_meter(self, event_name: str) -> None:
        meters = await self.call(self.v1.billing.meters.list_async({"status": "active"}))
        if any(m.event_name == event_name for m in meters.data):
            return
        params: dict[str, Any] = {
            "display_name": "API calls beyond the plan",
            "event_name": event_name,
            "default_aggregation": {"formula": "sum"},
        }
        key = f"catalytic:catalog:meter:{event_name}"
        await self.call(self.v1.billing.meters.create_async(params, {"idempotency_key": key}))  # type: ignore[arg-type]

    async def close(self) -> None:
        await self._http.close_async()  # type: ignore[no-untyped-call]
