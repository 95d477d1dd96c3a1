"""The notifier as `catalytic serve/worker notifier` run it, inside the whole platform (e2e fixture)."""

from __future__ import annotations

import base64
import hashlib
import hmac
from email import message_from_bytes, policy
from email.message import EmailMessage
from uuid import uuid4

import httpx
from redis.asyncio import Redis

from shared.devstack import DevEnv
from shared.events import EmailVerificationRequested, PaymentSucceeded
from tests.notifier.helpers import admin_of, emit, event, eventually, receiving, unique_address
from tests.platform import Platform


def _mails_to(peers: DevEnv, address: str) -> list[EmailMessage]:
    found = []
    for path in sorted(peers.mail_dir.glob("*.eml")):
        raw = path.read_bytes()
        if address.encode() in raw[:2048]:
            msg = message_from_bytes(raw, policy=policy.default)
            assert isinstance(msg, EmailMessage)
            found.append(msg)
    return found


async def test_event_on_the_stream_becomes_an_email(platform: Platform, peers: DevEnv) -> None:
    to = unique_address("platform")
    redis = Redis.from_url(peers.redis_url)
    try:
        verify = EmailVerificationRequested(
            user_id=uuid4(), email=to, token="e2e-token", tenant_name="E2E Co"
        )
        await emit(redis, event(verify, uuid4()))

        async def arrived() -> bool:
            return bool(_mails_to(peers, to))

        await eventually(arrived, 30, f"mail to {to}")
    finally:
        await redis.aclose()
    [mail] = _mails_to(peers, to)
    text = mail.get_body(("plain",))
    assert text is not None
    assert "https://app.e2e.test/verify-email?token=e2e-token" in text.get_content()  # type: ignore[attr-defined]


async def test_tenant_webhook_through_the_platform(platform: Platform, peers: DevEnv) -> None:
    tenant = uuid4()
    redis = Redis.from_url(peers.redis_url)
    try:
        async with receiving() as receiver, httpx.AsyncClient(base_url=platform.url("notifier")) as http:
            resp = await http.post(
                "/webhooks/endpoints",
                json={"url": receiver.url, "event_types": ["billing.payment.succeeded"]},
                headers=admin_of(tenant),
            )
            assert resp.status_code == 201, resp.text
            secret = resp.json()["secret"]
            paid = event(PaymentSucceeded(invoice_id="in_e2e", amount_cents=2900, currency="usd"), tenant)
            await emit(redis, paid)
            [got] = await receiver.wait(1, timeout=30)
            local = await http.post(
                "/webhooks/endpoints", json={"url": "http://127.0.0.1:9/x"}, headers=admin_of(tenant)
            )
            assert local.status_code == 422 and local.json()["code"] == "webhook_url_forbidden"
    finally:
        await redis.aclose()
    assert got.headers["webhook-id"] == str(paid.id)
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{got.headers['webhook-id']}.{got.headers['webhook-timestamp']}.".encode() + got.body
    expected = "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    assert expected in got.headers["webhook-signature"].split(" ")
