"""`catalytic dev checkout-complete <session_id>`: pay a checkout in the fake Stripe, as a customer would.

The fake marks the session paid, creates the subscription and its paid invoice, and delivers
the events this caused, signed with the webhook secret, to the platform's webhook endpoint:
the gateway's `/webhooks/stripe` when it routes there, else billing's own endpoint with an
anonymous caller assertion (what the gateway would have added). Settings come from the
environment, as `catalytic dev` writes them to `.dev/dev.env`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx

from shared.auth.assertion import HEADER, AssertionSigner, Caller
from shared.devstack.fakestripe.signing import sign

LOCAL_KEY = "sk_test_catalytic_local"
WEBHOOK_PATH = "/webhooks/stripe"


class CheckoutCompleteError(RuntimeError):
    pass


def _need(env: Mapping[str, str], *names: str) -> str:
    for name in names:
        if env.get(name):
            return env[name]
    raise CheckoutCompleteError(f"{' or '.join(names)} is not set (source .dev/dev.env)")


def webhook_secret(env: Mapping[str, str]) -> str:
    raw = _need(env, "BILLING_STRIPE_WEBHOOK_SECRETS", "STRIPE_WEBHOOK_SECRETS", "STRIPE_WEBHOOK_SECRET")
    return raw.split(",")[0].strip()


def _assertion(env: Mapping[str, str]) -> str:
    """An anonymous caller assertion for billing, as the gateway signs them."""
    pem = env.get("ASSERTION_PRIVATE_KEY") or Path(_need(env, "ASSERTION_PRIVATE_KEY_FILE")).read_text()
    caller = Caller(kind="anonymous", aud="billing", exp=time.time() + 30, request_id="checkout-complete")
    return AssertionSigner(pem).sign(caller)


def _gateway_routes_webhooks(url: str, secret: str) -> bool:
    """True if the gateway passes webhooks to billing unchanged: a correctly signed body that is
    no event gets billing's `malformed_event` (and nothing is stored). A missing route, a dropped
    header or a rewritten body answers otherwise."""
    body = b"[]"
    headers = {"Content-Type": "application/json", "Stripe-Signature": sign(body, secret)}
    try:
        resp = httpx.post(url, content=body, headers=headers, timeout=5)
        return resp.status_code == 400 and resp.json().get("code") == "malformed_event"
    except (httpx.HTTPError, ValueError):
        return False


def target(env: Mapping[str, str], to: str) -> tuple[str, dict[str, str]]:
    """(webhook URL, extra headers) for `to`: auto, gateway, billing or a URL."""
    if to.startswith(("http://", "https://")):
        return to, {}
    gateway = _need(env, "GATEWAY_URL").rstrip("/") + WEBHOOK_PATH
    if to == "gateway" or (to == "auto" and _gateway_routes_webhooks(gateway, webhook_secret(env))):
        return gateway, {}
    if to not in ("auto", "billing"):
        raise CheckoutCompleteError(f"--to must be auto, gateway, billing or a URL, not {to!r}")
    billing = _need(env, "BILLING_URL").rstrip("/") + WEBHOOK_PATH
    return billing, {HEADER: _assertion(env)}


def complete(session_id: str, to: str = "auto", env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Complete the session in the fake and deliver its webhooks; answer the fake's reply."""
    env = os.environ if env is None else env
    api_base = _need(env, "STRIPE_API_BASE").rstrip("/")
    key = env.get("STRIPE_API_KEY") or env.get("BILLING_STRIPE_API_KEY") or LOCAL_KEY
    url, headers = target(env, to)
    body = {"deliver_to": url, "webhook_secret": webhook_secret(env), "webhook_headers": headers}
    resp = httpx.post(
        f"{api_base}/v1/test_helpers/checkout/sessions/{session_id}/complete",
        json=body,
        headers={"Authorization": f"Bearer {key}"},
        timeout=60,
    )
    reply: dict[str, Any] = resp.json()
    reply["fake_delivered_to"] = url
    if resp.status_code != 200:
        message = reply.get("error", {}).get("message", resp.text)
        raise CheckoutCompleteError(f"the fake Stripe refused: {resp.status_code} {message}")
    return reply


def main(session_id: str, to: str = "auto") -> int:
    try:
        reply = complete(session_id, to)
    except (CheckoutCompleteError, httpx.HTTPError, OSError) as exc:
        print(f"checkout-complete: {exc}")
        return 1
    deliveries = reply.get("fake_deliveries", [])
    print(f"session {reply['id']}: {reply['status']}, subscription {reply.get('subscription')}")
    print(f"webhooks to {reply.get('fake_delivered_to', '?')}")
    for d in deliveries:
        outcome = f"{d['status'] or ''} {d['error']}".strip()
        print(f"  {d['type']:<36} {d['event']}  -> {outcome}")
    failed = [d for d in deliveries if not 200 <= d["status"] < 300]
    if failed:
        print(f"{len(failed)} of {len(deliveries)} webhooks were not accepted")
        return 1
    print(f"{len(deliveries)} signed webhooks delivered")
    return 0
