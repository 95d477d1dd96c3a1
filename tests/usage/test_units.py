"""The pure parts: metering of odd records, redaction, cursors, time parsing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import msgspec
import pytest

from services.usage.audit import REDACTED, redact
from services.usage.errors import InvalidCursor, InvalidTime
from services.usage.metering import meter
from services.usage.models import NO_KEY
from services.usage.service import decode_cursor, encode_cursor, parse_time
from shared.ids import uuid7
from tests.usage.helpers import batch, record


def test_odd_records_are_clamped_not_refused() -> None:
    tenant = uuid7()
    naive = datetime(2026, 3, 1, 10, 30)  # no offset: UTC
    offset = datetime(2026, 3, 1, 12, 45, tzinfo=timezone(timedelta(hours=2)))  # 10:45 UTC
    odd = msgspec.structs.replace(
        record(tenant, naive, route="", status=-3, latency=-1.0, bytes_in=-5, bytes_out=2**70),
        method="get\x00",
    )
    out = meter([batch([odd, record(tenant, offset, status=503, latency=7.0)])])
    assert [r[1] for r in out.rows] == [naive.replace(tzinfo=UTC), offset.astimezone(UTC)]
    assert out.rows[0][6:12] == ("GET", "/", 0, 0.0, 0, 2**62)
    (hourly,) = [h for h in out.hourly if h.route == "/"]
    ten = datetime(2026, 3, 1, 10, tzinfo=UTC)
    assert (hourly.bucket, hourly.api_key_id, hourly.calls) == (ten, NO_KEY, 1)
    assert [(d.day.isoformat(), d.calls, d.server_errors) for d in out.daily] == [
        ("2026-03-01", 1, 0),
        ("2026-03-01", 1, 1),
    ]
    assert out.monthly == [(tenant, datetime(2026, 3, 1).date(), 2, 0)]


def test_latest_use_per_key_wins() -> None:
    tenant, key = uuid7(), uuid7()
    at = datetime(2026, 3, 1, tzinfo=UTC)
    out = meter([batch([record(tenant, at + timedelta(seconds=s), key=key) for s in (5, 9, 1)])])
    latest = [(k.api_key_id, k.tenant_id, k.last_used_at) for k in out.keys]
    assert latest == [(key, tenant, at + timedelta(seconds=9))]


def test_secrets_are_redacted_at_any_depth() -> None:
    data = {"token": "t", "nested": [{"client_secret": "s", "ok": "x"}], "refresh_token": "r", "name": "n"}
    assert redact(data) == {
        "token": REDACTED,
        "nested": [{"client_secret": REDACTED, "ok": "x"}],
        "refresh_token": REDACTED,
        "name": "n",
    }


def test_cursor_round_trip_and_refusals() -> None:
    at, event_id = datetime(2026, 3, 1, 1, 2, 3, 456789, tzinfo=UTC), uuid7()
    assert decode_cursor(encode_cursor(at, event_id)) == (at, event_id)
    for bad in ("", "%%%", "bm90IGpzb24", encode_cursor(at, event_id)[:-3]):
        with pytest.raises(InvalidCursor):
            decode_cursor(bad)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2026-03-01", datetime(2026, 3, 1, tzinfo=UTC)),
        ("2026-03-01T10:00:00Z", datetime(2026, 3, 1, 10, tzinfo=UTC)),
        ("2026-03-01T12:00:00+02:00", datetime(2026, 3, 1, 10, tzinfo=UTC)),
    ],
)
def test_times_are_utc(raw: str, expected: datetime) -> None:
    assert parse_time(raw, "from") == expected


@pytest.mark.parametrize("raw", ["soon", "1999-12-31", "2026-02-30", ""])
def test_bad_times_are_refused(raw: str) -> None:
    with pytest.raises(InvalidTime):
        parse_time(raw, "from")
