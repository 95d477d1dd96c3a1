"""Billing meters, meter events (one per identifier) and their summaries."""

from __future__ import annotations

import time
from typing import Any

from localstripe.resources import Customer, List, StripeObject, store, try_convert_to_int

from shared.devstack.fakestripe.common import DAY, all_of, bad, listing, string, unknown


class Meter(StripeObject):  # type: ignore[misc]
    object = "billing.meter"
    _id_prefix = "mtr_"

    def __init__(
        self,
        display_name: Any = None,
        event_name: Any = None,
        default_aggregation: Any = None,
        customer_mapping: Any = None,
        value_settings: Any = None,
        event_time_window: Any = None,
        **kwargs: Any,
    ) -> None:
        unknown(kwargs)
        display_name = string(display_name, "display_name", required=True)
        event_name = string(event_name, "event_name", required=True)
        formula = (default_aggregation or {}).get("formula")
        if formula not in ("sum", "count", "last"):
            raise bad("Missing required param: default_aggregation[formula].", "default_aggregation")
        if any(m.event_name == event_name and m.status == "active" for m in all_of(Meter)):
            raise bad(f"An active meter with event_name `{event_name}` already exists.", "event_name")

        super().__init__()

        self.display_name = display_name
        self.event_name = event_name
        self.status = "active"
        self.default_aggregation = {"formula": formula}
        self.customer_mapping = customer_mapping or {
            "event_payload_key": "stripe_customer_id",
            "type": "by_id",
        }
        self.value_settings = value_settings or {"event_payload_key": "value"}
        self.event_time_window = event_time_window
        self.updated = self.created

    @classmethod
    def _api_list_all(
        cls, url: str, status: Any = None, limit: Any = None, starting_after: Any = None, **kwargs: Any
    ) -> Any:
        unknown(kwargs)
        items = [m for m in all_of(Meter) if status is None or m.status == status]
        return listing(cls, url, items, limit, starting_after)

    @classmethod
    def _api_event_summaries(
        cls,
        id: str,
        customer: Any = None,
        start_time: Any = None,
        end_time: Any = None,
        value_grouping_window: Any = None,
        limit: Any = None,
        starting_after: Any = None,
        **kwargs: Any,
    ) -> Any:
        unknown(kwargs)
        meter = cls._api_retrieve(id)
        start, end = try_convert_to_int(start_time), try_convert_to_int(end_time)
        if not isinstance(start, int) or not isinstance(end, int) or start >= end:
            raise bad("start_time and end_time are required, start_time < end_time.", "start_time")
        Customer._api_retrieve(string(customer, "customer", required=True))
        key = meter.customer_mapping["event_payload_key"]
        value_key = meter.value_settings["event_payload_key"]
        values = [
            float(e.payload.get(value_key, 0))
            for e in all_of(MeterEvent)
            if e.event_name == meter.event_name
            and e.payload.get(key) == customer
            and start <= e.timestamp < end
        ]
        if meter.default_aggregation["formula"] == "count":
            total = float(len(values))
        elif meter.default_aggregation["formula"] == "last":
            total = values[-1] if values else 0.0
        else:
            total = float(sum(values))
        li = List(f"/v1/billing/meters/{id}/event_summaries", limit=limit, starting_after=starting_after)
        li._list = [MeterEventSummary(meter.id, customer, start, end, total)]
        return li


class MeterEvent(StripeObject):  # type: ignore[misc]
    """Stored under its identifier, so a repeated identifier is counted once."""

    object = "billing.meter_event"

    def __init__(
        self,
        event_name: Any = None,
        payload: Any = None,
        identifier: Any = None,
        timestamp: Any = None,
        **kwargs: Any,
    ) -> None:
        unknown(kwargs)
        event_name = string(event_name, "event_name", required=True)
        if not isinstance(payload, dict) or ("stripe_customer_id" not in payload and "value" not in payload):
            raise bad("Missing required param: payload.", "payload")
        now = int(time.time())
        timestamp = try_convert_to_int(timestamp) if timestamp is not None else now
        if not isinstance(timestamp, int) or not now - 35 * DAY <= timestamp <= now + 300:
            raise bad(
                "timestamp must be within the past 35 days or up to 5 minutes in the future.", "timestamp"
            )
        identifier = string(identifier, "identifier") or f"fake_{now}_{id(payload)}"
        super().__init__(id=identifier)
        self.event_name = event_name
        self.payload = dict(payload)
        self.identifier = identifier
        self.timestamp = timestamp

    @classmethod
    def _api_create(cls, **data: Any) -> Any:
        identifier = data.get("identifier")
        if isinstance(identifier, str) and store.get(f"{cls.object}:{identifier}") is not None:
            return store[f"{cls.object}:{identifier}"]  # uniqueness of identifiers: counted once
        return cls(**data)


class MeterEventSummary(StripeObject):  # type: ignore[misc]
    object = "billing.meter_event_summary"

    def __init__(self, meter: str, customer: str, start: int, end: int, value: float) -> None:
        # Not stored: a summary is computed on every read.
        self.id = f"mtrusg_{meter}_{customer}_{start}_{end}"
        self.created = int(time.time())
        self.livemode = False
        self.meter = meter
        self.aggregated_value = value
        self.start_time = start
        self.end_time = end
