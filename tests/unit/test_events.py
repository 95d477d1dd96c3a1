from __future__ import annotations

import msgspec
import pytest

from shared import events
from shared.ids import uuid7


def test_round_trip_keeps_type_and_payload_class() -> None:
    event = events.new_event(
        events.SubscriptionChanged(
            subscription_id="sub_1", plan="pro", status="active", previous_plan="free"
        ),
        tenant_id=uuid7(),
        actor=events.Actor(kind="stripe"),
        correlation_id="req-1",
    )
    decoded = events.decode(events.encode(event))
    assert decoded == event
    assert isinstance(decoded.data, events.SubscriptionChanged)
    assert events.stream_of(event) == events.BILLING_STREAM


def test_uuid7_is_time_ordered_and_versioned() -> None:
    ids = [uuid7() for _ in range(2000)]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    assert all(i.version == 7 for i in ids)


def _wire(**overrides: object) -> bytes:
    event = events.new_event(events.IdentityPing(note="x"), tenant_id=None)
    raw = msgspec.to_builtins(event)
    raw.update(overrides)
    return msgspec.json.encode(raw)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"\x00garbage", "undecodable"),
        (b'{"type": "identity.ping"}', "undecodable"),
        (_wire(type="identity.no_such_thing"), "unknown_type"),
        (_wire(version=99), "newer_version"),
        (_wire(data={"note": 5}), "invalid_payload"),
    ],
)
def test_bad_entries_raise_with_a_stable_reason(raw: bytes, reason: str) -> None:
    with pytest.raises(events.UndecodableEvent) as err:
        events.decode(raw)
    assert err.value.reason == reason


def test_unknown_fields_from_newer_producers_are_ignored() -> None:
    raw = _wire(data={"note": "hi", "added_later": True}, extra_envelope_field=1)
    assert events.decode(raw).data == events.IdentityPing(note="hi")


def test_every_catalog_type_names_its_stream_prefix() -> None:
    for type_name, spec in events.CATALOG.items():
        assert spec.stream.split(".")[0] == type_name.split(".")[0]
