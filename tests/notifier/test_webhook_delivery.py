"""Deliveries to real HTTP receivers: signatures, retries, the log, replays, rotation, auto-disable."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from typing import Any
from uuid import UUID, uuid4

import httpx
import msgspec
import pytest

from shared import events
from shared.events import (
    PasswordResetRequested,
    PaymentFailed,
    PaymentSucceeded,
    UserRegistered,
)
from tests.notifier.conftest import DISABLE_AFTER, WEBHOOK_SCHEDULE, Notifier
from tests.notifier.helpers import Received, admin_of, emit, event, eventually, receiving, unique_address

# --- an independent implementation of the Standard Webhooks verification -----------------


def verify(secret: str, received: Received, tolerance: int = 300) -> bool:
    """What a receiver does: HMAC-SHA256 over "id.timestamp.body" with the base64 key after whsec_."""
    msg_id = received.headers["webhook-id"]
    stamp = received.headers["webhook-timestamp"]
    if abs(time.time() - int(stamp)) > tolerance:
        return False
    key = base64.b64decode(secret.split("_", 1)[1])
    signed = msg_id.encode() + b"." + stamp.encode() + b"." + received.body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    for item in received.headers["webhook-signature"].split(" "):
        version, _, signature = item.partition(",")
        if version == "v1" and hmac.compare_digest(signature, expected):
            return True
    return False


def test_the_verifier_matches_the_spec_example() -> None:
    example = Received(
        headers={
            "webhook-id": "msg_p5jXN8AQM9LWM0D4loKWxJek",
            "webhook-timestamp": "1614265330",
            "webhook-signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
        },
        body=b'{"test": 2432232314}',
        at=0.0,
        path="/",
    )
    assert verify("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", example, tolerance=10**10)
    tampered = Received({**example.headers}, b'{"test": 2432232315}', 0.0, "/")
    assert not verify("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", tampered, tolerance=10**10)


# --- helpers ----------------------------------------------------------------------------


@pytest.fixture
async def http(notifier: Notifier) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=notifier.base_url) as client:
        yield client


async def _endpoint(http: httpx.AsyncClient, tenant: UUID, url: str, **body: Any) -> dict[str, Any]:
    resp = await http.post("/webhooks/endpoints", json={"url": url, **body}, headers=admin_of(tenant))
    assert resp.status_code == 201, resp.text
    made: dict[str, Any] = resp.json()
    return made


async def _deliveries(
    http: httpx.AsyncClient, tenant: UUID, endpoint: dict[str, Any]
) -> list[dict[str, Any]]:
    resp = await http.get(f"/webhooks/endpoints/{endpoint['id']}/deliveries", headers=admin_of(tenant))
    assert resp.status_code == 200, resp.text
    found: list[dict[str, Any]] = resp.json()
    return found


async def _detail(
    http: httpx.AsyncClient, tenant: UUID, endpoint: dict[str, Any], delivery: str
) -> dict[str, Any]:
    resp = await http.get(
        f"/webhooks/endpoints/{endpoint['id']}/deliveries/{delivery}", headers=admin_of(tenant)
    )
    assert resp.status_code == 200, resp.text
    found: dict[str, Any] = resp.json()
    return found


async def _settled(
    http: httpx.AsyncClient, tenant: UUID, endpoint: dict[str, Any], status: str = "succeeded"
) -> dict[str, Any]:
    box: dict[str, Any] = {}

    async def done() -> bool:
        for d in await _deliveries(http, tenant, endpoint):
            if d["status"] == status:
                box.update(d)
                return True
        return False

    await eventually(done, 30, f"a {status} delivery")
    return box


async def _handled(n: Notifier, event_id: UUID) -> None:
    async def seen() -> bool:
        found = await n.pool.fetchval(
            "SELECT true FROM inbox WHERE consumer_group = 'notifier.webhooks' AND event_id = $1", event_id
        )
        return bool(found)

    await eventually(seen, 20, f"event {event_id} handled by the webhook consumer")


# --- tests ------------------------------------------------------------------------------


async def test_delivery_is_signed_per_the_standard(http: httpx.AsyncClient, notifier: Notifier) -> None:
    tenant = uuid4()
    async with receiving() as receiver:
        endpoint = await _endpoint(
            http, tenant, receiver.url, event_types=["identity.password_reset.requested"]
        )
        source = event(
            PasswordResetRequested(
                user_id=uuid4(), email="sig@example.test", token="secret-token", expires_at=_soon()
            ),
            tenant,
        )
        await emit(notifier.redis, source)
        [got] = await receiver.wait(1)
    assert got.path == "/hooks"
    assert verify(endpoint["secret"], got)
    assert not verify("whsec_" + base64.b64encode(b"x" * 32).decode(), got)
    assert got.headers["webhook-id"] == str(source.id)
    assert got.headers["content-type"] == "application/json"
    assert got.headers["user-agent"].startswith("Catalytic-Webhooks/")
    body = json.loads(got.body)
    assert body["type"] == "identity.password_reset.requested"
    assert body["id"] == str(source.id) and body["tenant_id"] == str(tenant)
    assert body["timestamp"].startswith(str(source.occurred_at.year))
    assert body["data"]["email"] == "sig@example.test"
    assert "token" not in body["data"] and b"secret-token" not in got.body  # never leaves the platform
    delivery = await _settled(http, tenant, endpoint)
    assert delivery["event_id"] == str(source.id) and delivery["last_status_code"] == 200


async def test_failing_receiver_is_retried_on_schedule(http: httpx.AsyncClient, notifier: Notifier) -> None:
    tenant = uuid4()
    async with receiving(plan=[500, 503], reply=b"y" * 10_000) as receiver:
        endpoint = await _endpoint(http, tenant, receiver.url, event_types=["billing.payment.succeeded"])
        paid = PaymentSucceeded(invoice_id="in_r", amount_cents=100, currency="usd")
        await emit(notifier.redis, event(paid, tenant))
        first, second, third = await receiver.wait(3)
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == third.headers["webhook-id"]
    assert first.body == second.body == third.body
    assert all(verify(endpoint["secret"], r) for r in (first, second, third))
    # Each retry waited at least its delay of the schedule (a lower bound, never an upper one).
    assert second.at - first.at >= WEBHOOK_SCHEDULE[1] * 0.9
    assert third.at - second.at >= WEBHOOK_SCHEDULE[2] * 0.9
    delivery = await _settled(http, tenant, endpoint)
    assert delivery["attempts"] == 3
    detail = await _detail(http, tenant, endpoint, delivery["id"])
    tries = detail["attempts"]
    assert [t["status_code"] for t in tries] == [500, 503, 200]
    assert {t["trigger"] for t in tries} == {"scheduled"}
    limit = notifier.settings.webhook_response_max_bytes
    assert [len(t["response_body"]) for t in tries] == [limit, limit, limit]  # truncated
    assert all(t["duration_ms"] >= 0 for t in tries)
    state = (await http.get(f"/webhooks/endpoints/{endpoint['id']}", headers=admin_of(tenant))).json()
    assert state["enabled"] is True and state["failing_since"] is None  # the success ended the streak


async def test_unreachable_receiver_is_recorded_as_an_error(
    http: httpx.AsyncClient, notifier: Notifier
) -> None:
    tenant = uuid4()
    async with receiving() as receiver:
        url = receiver.url
    # The receiver is gone: connections are refused; each attempt says so in the log.
    endpoint = await _endpoint(http, tenant, url, event_types=["billing.payment.succeeded"])
    await emit(
        notifier.redis, event(PaymentSucceeded(invoice_id="in_x", amount_cents=1, currency="usd"), tenant)
    )

    async def tried() -> bool:
        found = await _deliveries(http, tenant, endpoint)
        return bool(found) and found[0]["attempts"] >= 2

    await eventually(tried, 20, "two failed attempts")
    [delivery] = await _deliveries(http, tenant, endpoint)
    detail = await _detail(http, tenant, endpoint, delivery["id"])
    assert detail["attempts"][0]["status_code"] is None
    assert "Connect" in detail["attempts"][0]["error"]
    await http.delete(f"/webhooks/endpoints/{endpoint['id']}", headers=admin_of(tenant))


async def test_manual_retry_replays_the_same_message(http: httpx.AsyncClient, notifier: Notifier) -> None:
    tenant = uuid4()
    async with receiving() as receiver:
        endpoint = await _endpoint(http, tenant, receiver.url, event_types=["identity.*"])
        await emit(
            notifier.redis, event(UserRegistered(user_id=uuid4(), email=unique_address("replay")), tenant)
        )
        [first] = await receiver.wait(1)
        delivery = await _settled(http, tenant, endpoint)
        path = f"/webhooks/endpoints/{endpoint['id']}/deliveries/{delivery['id']}/retry"
        resp = await http.post(path, headers=admin_of(tenant))
        assert resp.status_code == 202, resp.text
        assert resp.json()["delivery_id"] == delivery["id"] and resp.json()["status"] == "queued"
        _, again = await receiver.wait(2)
    assert again.headers["webhook-id"] == first.headers["webhook-id"] and again.body == first.body
    assert verify(endpoint["secret"], again)

    async def logged() -> bool:
        detail = await _detail(http, tenant, endpoint, delivery["id"])
        return len(detail["attempts"]) == 2

    await eventually(logged, 20, "the replay in the log")
    detail = await _detail(http, tenant, endpoint, delivery["id"])
    assert [a["trigger"] for a in detail["attempts"]] == ["scheduled", "manual"]
    missing = await http.post(
        f"/webhooks/endpoints/{endpoint['id']}/deliveries/{uuid4()}/retry", headers=admin_of(tenant)
    )
    assert missing.status_code == 404 and missing.json()["code"] == "webhook_delivery_not_found"


async def test_rotation_signs_with_both_secrets_during_the_overlap(
    http: httpx.AsyncClient, notifier: Notifier
) -> None:
    tenant = uuid4()
    async with receiving() as receiver:
        endpoint = await _endpoint(http, tenant, receiver.url, event_types=["identity.user.registered"])
        old = endpoint["secret"]
        rotate = f"/webhooks/endpoints/{endpoint['id']}/secret/rotate"
        new = (await http.post(rotate, json={"overlap_seconds": 3600}, headers=admin_of(tenant))).json()[
            "secret"
        ]
        await emit(
            notifier.redis, event(UserRegistered(user_id=uuid4(), email=unique_address("rot")), tenant)
        )
        [during] = await receiver.wait(1)
        newest = (await http.post(rotate, json={"overlap_seconds": 0}, headers=admin_of(tenant))).json()[
            "secret"
        ]
        await emit(
            notifier.redis, event(UserRegistered(user_id=uuid4(), email=unique_address("rot")), tenant)
        )
        _, after = await receiver.wait(2)
    assert len(during.headers["webhook-signature"].split(" ")) == 2
    assert verify(old, during) and verify(new, during)
    assert len(after.headers["webhook-signature"].split(" ")) == 1
    assert verify(newest, after) and not verify(new, after) and not verify(old, after)


async def test_endpoint_failing_too_long_is_disabled_and_admins_are_told(
    http: httpx.AsyncClient, notifier: Notifier
) -> None:
    tenant = uuid4()
    owner, admin = unique_address("owner"), unique_address("admin")
    await emit(
        notifier.redis, event(UserRegistered(user_id=uuid4(), email=owner, tenant_name="Initech"), tenant)
    )
    await emit(notifier.redis, event(UserRegistered(user_id=uuid4(), email=admin, role="admin"), tenant))
    await notifier.mailbox.wait(owner)
    await notifier.mailbox.wait(admin)
    async with receiving(plan=[500] * 50) as receiver:
        endpoint = await _endpoint(http, tenant, receiver.url, event_types=["billing.payment.failed"])
        failed = PaymentFailed(invoice_id="in_d", amount_cents=500, currency="usd")
        await emit(notifier.redis, event(failed, tenant))
        path = f"/webhooks/endpoints/{endpoint['id']}"

        async def disabled() -> bool:
            state = (await http.get(path, headers=admin_of(tenant))).json()
            return state["enabled"] is False

        await eventually(disabled, 30, "endpoint disabled")
        state = (await http.get(path, headers=admin_of(tenant))).json()
    assert "failed for" in state["disabled_reason"] and state["disabled_at"] is not None
    assert len(receiver.requests) >= 2
    assert receiver.requests[-1].at - receiver.requests[0].at >= DISABLE_AFTER * 0.9
    for address in (owner, admin):
        mails = await notifier.mailbox.wait(address, count=3)  # welcome, payment failed, this
        [mail] = [m for m in mails if "Webhook endpoint disabled" in str(m["Subject"])]
        text = mail.get_body(("plain",))
        assert text is not None and receiver.url in text.get_content()  # type: ignore[attr-defined]
        assert "https://app.example.test/settings/webhooks" in text.get_content()  # type: ignore[attr-defined]
    published = await _published(notifier, "notifier.webhook_endpoint.disabled")
    assert any(p["data"]["endpoint_id"] == endpoint["id"] for p in published)
    # The pending delivery ends failed; a replay is refused until the endpoint is enabled again.
    delivery = await _settled(http, tenant, endpoint, status="failed")
    retry = await http.post(f"{path}/deliveries/{delivery['id']}/retry", headers=admin_of(tenant))
    assert retry.status_code == 409 and retry.json()["code"] == "webhook_endpoint_disabled"
    # New events are not delivered to a disabled endpoint.
    later = event(PaymentFailed(invoice_id="in_e", amount_cents=500, currency="usd"), tenant)
    await emit(notifier.redis, later)
    await _handled(notifier, later.id)
    assert all(d["event_id"] != str(later.id) for d in await _deliveries(http, tenant, endpoint))


async def test_type_filter_and_tenant_scope(http: httpx.AsyncClient, notifier: Notifier) -> None:
    tenant, stranger = uuid4(), uuid4()
    async with receiving() as receiver:
        await _endpoint(http, tenant, receiver.url, event_types=["billing.*"])
        skipped = event(UserRegistered(user_id=uuid4(), email=unique_address("skip")), tenant)
        foreign = event(PaymentSucceeded(invoice_id="in_f", amount_cents=1, currency="usd"), stranger)
        wanted = event(PaymentSucceeded(invoice_id="in_w", amount_cents=1, currency="usd"), tenant)
        for e in (skipped, foreign, wanted):
            await emit(notifier.redis, e)
        [got] = await receiver.wait(1)
        await _handled(notifier, skipped.id)
        await _handled(notifier, foreign.id)
    assert got.headers["webhook-id"] == str(wanted.id)
    ids = {r["event_id"] for r in await notifier.pool.fetch("SELECT event_id FROM webhook_deliveries")}
    assert skipped.id not in ids and foreign.id not in ids and wanted.id in ids
    assert len(receiver.requests) == 1


async def test_redelivered_event_is_delivered_once(http: httpx.AsyncClient, notifier: Notifier) -> None:
    tenant = uuid4()
    async with receiving() as receiver:
        endpoint = await _endpoint(http, tenant, receiver.url)
        same = event(UserRegistered(user_id=uuid4(), email=unique_address("dup")), tenant)
        await emit(notifier.redis, same)
        await emit(notifier.redis, same)
        await receiver.wait(1)
        await notifier.pool.execute(
            "DELETE FROM inbox WHERE event_id = $1 AND consumer_group = 'notifier.webhooks'", same.id
        )
        await emit(notifier.redis, same)
        marker = event(UserRegistered(user_id=uuid4(), email=unique_address("mark")), tenant)
        await emit(notifier.redis, marker)
        await receiver.wait(2)
        await _handled(notifier, same.id)
    ids = [r.headers["webhook-id"] for r in receiver.requests]
    assert ids.count(str(same.id)) == 1
    assert len([d for d in await _deliveries(http, tenant, endpoint) if d["event_id"] == str(same.id)]) == 1


async def test_ssrf_is_checked_again_when_delivering(http: httpx.AsyncClient, notifier: Notifier) -> None:
    """A URL accepted once may later resolve elsewhere (DNS rebinding): every connection is checked."""
    tenant = uuid4()
    async with receiving(host="127.0.0.1") as inside, receiving() as allowed:
        endpoint = await _endpoint(http, tenant, allowed.url, event_types=["billing.payment.succeeded"])
        # As if the name now resolved to 127.0.0.1, where an internal service listens.
        port = inside.url.split(":")[2].split("/")[0]
        await notifier.pool.execute(
            "UPDATE webhooks SET url = $2 WHERE id = $1",
            UUID(endpoint["id"]),
            f"http://localhost:{port}/hooks",
        )
        await emit(
            notifier.redis, event(PaymentSucceeded(invoice_id="in_s", amount_cents=1, currency="usd"), tenant)
        )

        async def refused() -> bool:
            found = await _deliveries(http, tenant, endpoint)
            return bool(found) and found[0]["attempts"] >= 1

        await eventually(refused, 20, "an attempt")
        [delivery] = await _deliveries(http, tenant, endpoint)
        detail = await _detail(http, tenant, endpoint, delivery["id"])
        assert detail["attempts"][0]["error"].startswith("blocked: localhost resolves to 127.0.0.1")
        assert detail["attempts"][0]["status_code"] is None
        assert inside.requests == [] and allowed.requests == []
        await http.delete(f"/webhooks/endpoints/{endpoint['id']}", headers=admin_of(tenant))


async def _published(n: Notifier, event_type: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []

    async def seen() -> bool:
        found.clear()
        for _, fields in await n.redis.xrange(events.NOTIFIER_STREAM):
            body = msgspec.json.decode(fields[b"event"])
            if body["type"] == event_type:
                found.append(body)
        return bool(found)

    await eventually(seen, 20, f"{event_type} on {events.NOTIFIER_STREAM}")
    return found


def _soon() -> Any:
    from datetime import UTC, datetime, timedelta

    return datetime.now(UTC) + timedelta(hours=1)
