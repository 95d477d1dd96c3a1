"""Every service starts, migrates its schema, serves health/ready/metrics, and talks over the bus."""

from __future__ import annotations

import asyncio
import time
import uuid

import asyncpg
import httpx
import pytest

from shared.platform import SERVICES
from tests.platform import Platform
from tests.support import anonymous, as_service


@pytest.mark.parametrize("service", list(SERVICES))
def test_health_ready_metrics(platform: Platform, service: str) -> None:
    base = platform.url(service)
    assert httpx.get(f"{base}/health").json() == {"status": "ok"}
    ready = httpx.get(f"{base}/ready")
    assert ready.status_code == 200, ready.text
    checks = ready.json()["checks"]
    assert checks["redis"]["ok"] is True
    assert ("postgres" in checks) == (SERVICES[service].schema is not None)
    assert all(c["latency_ms"] >= 0 for c in checks.values())
    metrics = httpx.get(f"{base}/metrics").text
    assert f'http_requests_total{{method="GET",service="{service}",status="200"}}' in metrics


def test_request_id_is_echoed_or_made(platform: Platform) -> None:
    base = platform.url("identity")
    given = httpx.get(f"{base}/health", headers={"X-Request-ID": "trace-abc-12345"})
    assert given.headers["x-request-id"] == "trace-abc-12345"
    made = httpx.get(f"{base}/health", headers={"X-Request-ID": "bad id; drop"})
    assert len(made.headers["x-request-id"]) == 32


def _produce(platform: Platform, producer: str) -> tuple[str, str]:
    """Make `producer` write one event; return its id and type."""
    corr = f"corr-{producer}-0001"
    if producer == "billing":
        sent = httpx.post(
            f"{platform.url(producer)}/internal/ping",
            json={"note": "hello"},
            headers={**as_service("billing"), "X-Request-ID": corr},
        )
        assert sent.status_code == 202, sent.text
        return sent.json()["event_id"], "billing.ping"
    # Identity has no smoke route: a registration is its simplest real state change.
    body = {"email": f"bus-{uuid.uuid4().hex[:12]}@example.com", "password": "Velvet-Orbit-Lantern-42"}
    body["company_name"] = "Bus Check"
    sent = httpx.post(
        f"{platform.url(producer)}/auth/register",
        json=body,
        headers={**anonymous("identity"), "X-Request-ID": corr},
    )
    assert sent.status_code == 201, sent.text
    event_id = asyncio.run(_outbox_event(platform, "identity.tenant.created", sent.json()["user_id"]))
    return event_id, "identity.tenant.created"


async def _outbox_event(platform: Platform, type_: str, owner: str) -> str:
    conn = await asyncpg.connect(platform.env["DATABASE_URL"])
    try:
        found = await conn.fetchval(
            "SELECT id::text FROM identity.outbox WHERE type = $1"
            " AND convert_from(payload, 'UTF8')::jsonb #>> '{data,owner_user_id}' = $2",
            type_,
            owner,
        )
    finally:
        await conn.close()
    assert found is not None
    return str(found)


@pytest.mark.parametrize("producer", ["identity", "billing"])
def test_event_travels_outbox_to_stream_to_audit(platform: Platform, producer: str) -> None:
    event_id, action = _produce(platform, producer)
    deadline = time.monotonic() + 15
    while True:
        got = httpx.get(f"{platform.url('usage')}/internal/audit/{event_id}", headers=as_service("usage"))
        if got.status_code == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert got.status_code == 200, got.text
    assert got.json()["action"] == action


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b"{not json", 400, "malformed_body"),
        (b'{"note": 5}', 422, "invalid_input"),
        (b"[]", 422, "invalid_input"),
    ],
)
def test_bad_input_gets_problem_json(platform: Platform, body: bytes, status: int, code: str) -> None:
    resp = httpx.post(
        f"{platform.url('identity')}/auth/login",
        content=body,
        headers={**anonymous("identity"), "Content-Type": "application/json"},
    )
    assert resp.status_code == status
    assert resp.headers["content-type"].startswith("application/problem+json")
    problem = resp.json()
    assert problem["code"] == code
    assert problem["status"] == status
    assert problem["request_id"] == resp.headers["x-request-id"]


def test_unknown_route_and_oversized_body(platform: Platform) -> None:
    missing = httpx.get(f"{platform.url('identity')}/nope")
    assert missing.status_code == 404
    assert missing.json()["code"] == "not_found"
    huge = httpx.post(
        f"{platform.url('identity')}/auth/login",
        content=b"x" * (2 * 1024 * 1024),
        headers={**anonymous("identity"), "Content-Type": "application/json"},
    )
    assert huge.status_code == 413
    assert huge.json()["code"] == "payload_too_large"


def test_unknown_audit_entry_is_404_problem(platform: Platform) -> None:
    resp = httpx.get(
        f"{platform.url('usage')}/internal/audit/01a1ffc7-3964-7169-ba15-148dc9203355",
        headers=as_service("usage"),
    )
    assert resp.status_code == 404
    assert resp.json()["code"] == "not_found"
