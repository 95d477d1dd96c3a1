"""Checkout Sessions and billing-portal sessions."""

from __future__ import annotations

import time
from typing import Any

from localstripe.errors import UserError
from localstripe.resources import (
    Customer,
    Event,
    StripeObject,
    schedule_webhook,
    try_convert_to_bool,
    try_convert_to_int,
)

from shared.devstack.fakestripe.common import DAY, all_of, bad, listing, metadata_of, string, unknown
from shared.devstack.fakestripe.prices import Price


class CheckoutSession(StripeObject):  # type: ignore[misc]
    object = "checkout.session"
    _id_prefix = "cs_test_"

    def __init__(  # noqa: PLR0915 - one check per Stripe parameter
        self,
        mode: Any = None,
        line_items: Any = None,
        customer: Any = None,
        customer_email: Any = None,
        success_url: Any = None,
        cancel_url: Any = None,
        client_reference_id: Any = None,
        metadata: Any = None,
        subscription_data: Any = None,
        allow_promotion_codes: Any = None,
        billing_address_collection: Any = None,
        customer_update: Any = None,
        payment_method_types: Any = None,
        automatic_tax: Any = None,
        locale: Any = None,
        expires_at: Any = None,
        _base_url: str = "",
        **kwargs: Any,
    ) -> None:
        unknown(kwargs)
        if mode not in ("subscription", "payment", "setup"):
            raise bad("Missing required param: mode.", "mode")
        if mode != "subscription":
            raise UserError(500, "fakestripe: only mode=subscription is implemented")
        if customer is not None:
            Customer._api_retrieve(string(customer, "customer"))
        if customer is not None and customer_email is not None:
            raise bad("You may only specify one of these parameters: customer, customer_email.")
        if not isinstance(line_items, list) or not line_items:
            raise bad("Missing required param: line_items.", "line_items")
        items = []
        for i, item in enumerate(line_items):
            price_id = string(
                item.get("price") if isinstance(item, dict) else None, f"line_items[{i}][price]"
            )
            price = Price._api_retrieve(price_id) if price_id else None
            if price is None or price.type != "recurring":
                raise bad("You must provide at least one recurring price in `subscription` mode.")
            quantity = try_convert_to_int(
                item.get("quantity", 1 if price.recurring["usage_type"] == "licensed" else None)
            )
            items.append({"price": price.id, "quantity": quantity})
        licensed = [i for i in items if Price._api_retrieve(i["price"]).recurring["usage_type"] == "licensed"]
        if len(licensed) != 1:
            raise UserError(500, "fakestripe: exactly one licensed price per subscription is implemented")
        subscription_data = subscription_data or {}
        if not isinstance(subscription_data, dict):
            raise bad("Invalid subscription_data", "subscription_data")
        trial_days = try_convert_to_int(subscription_data.get("trial_period_days"))
        if trial_days is not None and (not isinstance(trial_days, int) or trial_days < 1):
            raise bad("Invalid subscription_data[trial_period_days]", "subscription_data")
        metadata = metadata_of(metadata)
        sub_metadata = metadata_of(subscription_data.get("metadata"))
        expires_at = try_convert_to_int(expires_at)

        super().__init__()

        first = Price._api_retrieve(licensed[0]["price"])
        self.mode = mode
        self.status = "open"
        self.payment_status = "unpaid"
        self.customer = customer
        self.customer_email = customer_email
        self.customer_details = None
        self.client_reference_id = client_reference_id
        self.metadata = metadata
        self.success_url = success_url
        self.cancel_url = cancel_url
        self.currency = first.currency
        self.amount_subtotal = sum(
            Price._api_retrieve(i["price"]).unit_amount * (i["quantity"] or 0) for i in items
        )
        self.amount_total = self.amount_subtotal
        self.subscription = None
        self.invoice = None
        self.payment_intent = None
        self.allow_promotion_codes = try_convert_to_bool(allow_promotion_codes)
        self.expires_at = expires_at if isinstance(expires_at, int) else self.created + DAY
        self.url = f"{_base_url}/checkout/{self.id}"
        self._line_items = items
        self._subscription_metadata = sub_metadata
        self._trial_period_days = trial_days

    def _check_open(self) -> None:
        if self.status != "open":
            raise bad(f"This Checkout Session is {self.status}; it can no longer be completed or expired.")
        if self.expires_at <= int(time.time()):
            self.status = "expired"
            raise bad("This Checkout Session has expired.")

    @classmethod
    def _api_expire(cls, id: str, **kwargs: Any) -> Any:
        unknown(kwargs)
        obj = cls._api_retrieve(id)
        obj._check_open()
        obj.status = "expired"
        schedule_webhook(Event("checkout.session.expired", obj))
        return obj

    @classmethod
    def _api_list_all(
        cls,
        url: str,
        customer: Any = None,
        subscription: Any = None,
        status: Any = None,
        limit: Any = None,
        starting_after: Any = None,
        **kwargs: Any,
    ) -> Any:
        unknown(kwargs)
        items = all_of(CheckoutSession)
        if customer is not None:
            items = [s for s in items if s.customer == customer]
        if subscription is not None:
            items = [s for s in items if s.subscription == subscription]
        if status is not None:
            items = [s for s in items if s.status == status]
        return listing(cls, url, items, limit, starting_after)


class PortalSession(StripeObject):  # type: ignore[misc]
    object = "billing_portal.session"
    _id_prefix = "bps_"

    def __init__(
        self,
        customer: Any = None,
        return_url: Any = None,
        configuration: Any = None,
        locale: Any = None,
        flow_data: Any = None,
        _base_url: str = "",
        **kwargs: Any,
    ) -> None:
        unknown(kwargs)
        Customer._api_retrieve(string(customer, "customer", required=True))
        return_url = string(return_url, "return_url")

        super().__init__()

        self.customer = customer
        self.return_url = return_url
        self.configuration = configuration
        self.locale = locale
        self.flow = None
        self.on_behalf_of = None
        self.url = f"{_base_url}/portal/{self.id}"
