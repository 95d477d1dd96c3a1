"""Scenario `webhook_to_email`: a signed Stripe webhook at the gateway -> the receipt email accepted
by the SMTP peer (target: p99 <= 250 ms at a modest steady rate).

The whole platform runs (bench/platform.py). One tenant registers and subscribes through the
gateway and the fake Stripe; then the fake Stripe renews the subscription COUNT times (each renewal
a new paid invoice, its webhooks not delivered). The bench then POSTs each renewal's
`invoice.paid` event, signed with Stripe's scheme at the moment it is sent, to the gateway's
`/webhooks/stripe` at RATE per second (open loop), and reads the catcher's files: each receipt
names its invoice, and the file name carries the moment the catcher accepted it. The path:
gateway -> billing API (verify, store) -> billing worker (fetch the invoice from Stripe, announce
through the outbox) -> relay -> Redis stream -> notifier worker (render, queue) -> SMTP.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
import re
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from bench import platform
from bench.common import Figure, percentile, single
from bench.procs import BenchError
from shared.devstack import DevEnv
from shared.devstack.fakestripe.signing import sign

METRICS = (
    "webhook_to_email/p50_ms",
    "webhook_to_email/p99_ms",
    "webhook_to_email/max_ms",
    "webhook_to_email/rate_per_s",
    "webhook_to_email/emails",
)
RATE = 5.0  # webhooks/s: a busy Stripe account sends a few a second
COUNT = 150
WARMUP = 10  # the first receipts are not counted (connections, prepared statements)
STRIPE_KEY = "sk_test_catalytic_local"
PASSWORD = "Velvet-Orbit-Lantern-42"
DRAIN_TIMEOUT = 120.0  # a hang guard, not a performance check

SETTINGS: dict[str, Any] = {
    "rate_per_s": RATE,
    "webhooks": COUNT,
    "not_counted_first": WARMUP,
    "event": "invoice.paid of a subscription renewal (fake Stripe), signed when sent",
    "platform": "every API and worker, one process each (bench/platform.py), LOG_LEVEL=WARNING",
    "smtp_peer": "shared/devstack/mailcatcher.py (aiosmtpd), one .eml per accepted mail",
}

_INVOICE = re.compile(r"\(invoice (in_[A-Za-z0-9]+)\)")


def run(env: DevEnv) -> list[Figure]:
    with platform.running(env) as p:
        latencies, rate = asyncio.run(_measure(p))
    return [
        single("webhook_to_email", "p50_ms", percentile(latencies, 50), "ms"),
        single("webhook_to_email", "p99_ms", percentile(latencies, 99), "ms"),
        single("webhook_to_email", "max_ms", max(latencies), "ms"),
        single("webhook_to_email", "rate_per_s", rate, "webhooks/s"),
        single("webhook_to_email", "emails", len(latencies), "count"),
    ]


async def _measure(p: platform.Platform) -> tuple[list[float], float]:
    gateway, stripe = p.url("gateway"), p.peers.stripe_api_base
    hook = f"{gateway}/webhooks/stripe"
    async with httpx.AsyncClient(timeout=30) as http:
        sub_id = await _subscribe(http, gateway, stripe, hook)
        bodies = [await _renewal(http, stripe, sub_id) for _ in range(COUNT)]
        seen = {path.name for path in p.peers.mail_dir.glob("*.eml")}
        sent: dict[str, float] = {}
        start = time.monotonic()
        for i, (invoice_id, body) in enumerate(bodies):
            await asyncio.sleep(max(0.0, start + i / RATE - time.monotonic()))
            headers = {
                "Content-Type": "application/json",
                "Stripe-Signature": sign(body, platform.WEBHOOK_SECRET),
            }
            sent[invoice_id] = time.time()
            resp = await http.post(hook, content=body, headers=headers)
            if resp.status_code != 200:
                raise BenchError(f"webhook refused: {resp.status_code} {resp.text[:300]}")
        rate = (len(bodies) - 1) / (time.monotonic() - start)
        accepted = await _receipts(p.peers.mail_dir, seen, set(sent))
    counted = [invoice for invoice, _ in bodies[WARMUP:]]
    return [(accepted[i] - sent[i]) * 1000 for i in counted], rate


async def _subscribe(http: httpx.AsyncClient, gateway: str, stripe: str, hook: str) -> str:
    """A tenant registered and subscribed as a customer would; its subscription id."""
    body = {"email": f"owner-{time.time_ns()}@bench.test", "password": PASSWORD, "company_name": "Bench Co"}
    resp = await http.post(f"{gateway}/auth/register", json=body)
    _expect(resp, 201, "register")
    auth = {"Authorization": f"Bearer {resp.json()['access_token']}"}
    resp = await http.post(f"{gateway}/billing/checkout", json={"plan": "starter"}, headers=auth)
    _expect(resp, 201, "checkout")
    delivery = {"deliver_to": hook, "webhook_secret": platform.WEBHOOK_SECRET, "webhook_headers": {}}
    done = await _helper(http, stripe, f"checkout/sessions/{resp.json()['session_id']}/complete", delivery)
    deadline = time.monotonic() + DRAIN_TIMEOUT
    while (await http.get(f"{gateway}/billing/subscription", headers=auth)).json().get("status") != "active":
        if time.monotonic() > deadline:
            raise BenchError("the subscription did not become active")
        await asyncio.sleep(0.1)
    return str(done["subscription"])


async def _renewal(http: httpx.AsyncClient, stripe: str, sub_id: str) -> tuple[str, bytes]:
    """Renew the subscription in the fake Stripe; the `invoice.paid` it caused, not yet delivered."""
    done = await _helper(http, stripe, f"subscriptions/{sub_id}/renew", {})
    for event_id in done["fake_events"]:
        resp = await http.get(
            f"{stripe}/v1/events/{event_id}", headers={"Authorization": f"Bearer {STRIPE_KEY}"}
        )
        _expect(resp, 200, "event")
        event = resp.json()
        if event["type"] == "invoice.paid":
            return str(event["data"]["object"]["id"]), json.dumps(event, sort_keys=True).encode()
    raise BenchError(f"renewal of {sub_id} caused no invoice.paid")


async def _helper(http: httpx.AsyncClient, stripe: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    resp = await http.post(
        f"{stripe}/v1/test_helpers/{path}",
        json=body,
        headers={"Authorization": f"Bearer {STRIPE_KEY}"},
        timeout=60,
    )
    _expect(resp, 200, path)
    got: dict[str, Any] = resp.json()
    for d in got.get("fake_deliveries", []):
        if d["status"] != 200:
            raise BenchError(f"the fake Stripe's delivery failed: {d}")
    return got


async def _receipts(mail_dir: Path, seen: set[str], invoices: set[str]) -> dict[str, float]:
    """Invoice id -> wall time the catcher accepted its receipt; every invoice once."""
    found: dict[str, float] = {}
    deadline = time.monotonic() + DRAIN_TIMEOUT
    while not invoices <= set(found):
        for path, invoice in _new_mail(mail_dir, seen):
            if invoice is not None and invoice in invoices:
                if invoice in found:
                    raise BenchError(f"two receipts for {invoice}: exactly-once broken")
                found[invoice] = _stamp(path.name)
        if time.monotonic() > deadline:
            raise BenchError(f"only {len(found)} of {len(invoices)} receipts arrived in {DRAIN_TIMEOUT:.0f}s")
        await asyncio.sleep(0.05)
    return found


def _new_mail(mail_dir: Path, seen: set[str]) -> list[tuple[Path, str | None]]:
    """(file, invoice id of the receipt) of the mails not seen before."""
    fresh = []
    for path in sorted(mail_dir.glob("*.eml")):
        if path.name not in seen:
            seen.add(path.name)
            fresh.append((path, _invoice_of(path)))
    return fresh


def _invoice_of(path: Path) -> str | None:
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    part = message.get_body(preferencelist=("plain",))
    text = part.get_content() if part is not None else ""
    match = _INVOICE.search(str(text))
    return match.group(1) if match else None


def _stamp(name: str) -> float:
    return datetime.strptime(name.split("-", 1)[0], "%Y%m%dT%H%M%S.%fZ").replace(tzinfo=UTC).timestamp()


def _expect(resp: httpx.Response, status: int, what: str) -> None:
    if resp.status_code != status:
        raise BenchError(f"{what}: {resp.status_code} {resp.text[:300]}")
