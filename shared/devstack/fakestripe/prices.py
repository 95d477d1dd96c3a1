"""Prices: a recurring price is also a localstripe plan with the same id."""

from __future__ import annotations

from typing import Any

from localstripe.errors import UserError
from localstripe.resources import (
    Event,
    Plan,
    Product,
    StripeObject,
    schedule_webhook,
    try_convert_to_bool,
    try_convert_to_int,
)

from shared.devstack.fakestripe.common import all_of, bad, listing, metadata_of, string, unknown


class Price(StripeObject):  # type: ignore[misc]
    object = "price"
    _id_prefix = "price_"

    def __init__(  # noqa: PLR0915 - one check per Stripe parameter
        self,
        currency: Any = None,
        unit_amount: Any = None,
        product: Any = None,
        product_data: Any = None,
        recurring: Any = None,
        lookup_key: Any = None,
        transfer_lookup_key: Any = None,
        nickname: Any = None,
        active: Any = True,
        metadata: Any = None,
        billing_scheme: Any = "per_unit",
        unit_amount_decimal: Any = None,
        tax_behavior: Any = None,
        **kwargs: Any,
    ) -> None:
        unknown(kwargs)
        unit_amount = try_convert_to_int(unit_amount)
        active = try_convert_to_bool(active)
        transfer = try_convert_to_bool(transfer_lookup_key) is True
        currency = string(currency, "currency", required=True)
        if unit_amount is None and unit_amount_decimal is not None:
            unit_amount = int(float(unit_amount_decimal))
        if not isinstance(unit_amount, int) or unit_amount < 0:
            raise bad("Missing required param: unit_amount.", "unit_amount")
        if billing_scheme != "per_unit":
            raise UserError(500, "fakestripe: only billing_scheme=per_unit is implemented")
        if (product is None) == (product_data is None):
            raise bad("Exactly one of product or product_data is required.", "product")
        if product is not None:
            Product._api_retrieve(string(product, "product"))
        elif not isinstance(product_data, dict) or not product_data.get("name"):
            raise bad("Missing required param: product_data[name].", "product_data")
        interval = None
        if recurring is not None:
            if not isinstance(recurring, dict) or recurring.get("interval") not in (
                "day",
                "week",
                "month",
                "year",
            ):
                raise bad("Invalid recurring[interval]", "recurring")
            interval = recurring["interval"]
        usage_type = (recurring or {}).get("usage_type", "licensed")
        if usage_type not in ("licensed", "metered"):
            raise bad("Invalid recurring[usage_type]", "recurring")
        lookup_key = string(lookup_key, "lookup_key")
        holder = Price._holding(lookup_key)
        if holder is not None and not transfer:
            raise bad(f"A price (`{holder.id}`) already uses that lookup key.", "lookup_key")
        metadata = metadata_of(metadata)
        if product is None:
            product = Product(
                name=product_data["name"], metadata=metadata_of(product_data.get("metadata"))
            ).id

        super().__init__()  # every check passed: the object may now enter the store

        if holder is not None:
            holder.lookup_key = None
        self.currency = currency
        self.unit_amount = unit_amount
        self.unit_amount_decimal = str(unit_amount)
        self.product = product
        self.active = active is not False
        self.lookup_key = lookup_key
        self.nickname = nickname
        self.metadata = metadata
        self.billing_scheme = "per_unit"
        self.tax_behavior = tax_behavior or "unspecified"
        self.type = "recurring" if recurring else "one_time"
        self.recurring = None
        if recurring:
            self.recurring = {
                "interval": interval,
                "interval_count": try_convert_to_int(recurring.get("interval_count", 1)),
                "usage_type": usage_type,
                "meter": recurring.get("meter"),
                "aggregate_usage": None,
                "trial_period_days": None,
            }
            # Stripe accepts a recurring price's id wherever a plan id goes; localstripe's
            # subscriptions only know plans, so the price gets a plan twin with the same id.
            Plan(
                id=self.id,
                amount=unit_amount,
                currency=currency,
                interval=interval,
                interval_count=self.recurring["interval_count"],
                product=product,
                nickname=nickname,
                usage_type=usage_type,
                metadata=dict(metadata),
            )
        schedule_webhook(Event("price.created", self))

    @staticmethod
    def _holding(lookup_key: str | None) -> Any:
        if lookup_key is None:
            return None
        return next((p for p in all_of(Price) if p.lookup_key == lookup_key), None)

    def _update(self, **data: Any) -> None:
        allowed = {"active", "metadata", "nickname", "lookup_key", "transfer_lookup_key", "tax_behavior"}
        unknown({k: v for k, v in data.items() if k not in allowed})
        transfer = try_convert_to_bool(data.pop("transfer_lookup_key", False)) is True
        if "lookup_key" in data:
            holder = Price._holding(data["lookup_key"] or None)
            if holder is not None and holder is not self:
                if not transfer:
                    raise bad(f"A price (`{holder.id}`) already uses that lookup key.", "lookup_key")
                holder.lookup_key = None
            self.lookup_key = data.pop("lookup_key") or None
        if "active" in data:
            data["active"] = try_convert_to_bool(data["active"])
        super()._update(**data)
        schedule_webhook(Event("price.updated", self))

    @classmethod
    def _api_list_all(
        cls,
        url: str,
        active: Any = None,
        product: Any = None,
        lookup_keys: Any = None,
        type: Any = None,
        currency: Any = None,
        limit: Any = None,
        starting_after: Any = None,
        **kwargs: Any,
    ) -> Any:
        unknown(kwargs)
        items = all_of(Price)
        if active is not None:
            items = [p for p in items if p.active == try_convert_to_bool(active)]
        if product is not None:
            items = [p for p in items if p.product == product]
        if lookup_keys is not None:
            keys = lookup_keys if isinstance(lookup_keys, list) else [lookup_keys]
            items = [p for p in items if p.lookup_key in keys]
        if type is not None:
            items = [p for p in items if p.type == type]
        if currency is not None:
            items = [p for p in items if p.currency == currency]
        return listing(cls, url, items, limit, starting_after)
