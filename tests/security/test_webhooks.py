"""Webhooks both ways: Stripe's calls must be fresh and signed with our secret; tenant endpoints can
never point the notifier at the platform's own network, whatever name or redirect leads there."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from shared.devstack.fakestripe.signing import sign
from tests.gateway.conftest import Stack
from tests.gateway.support import bearer, client, poll
from tests.security.conftest import Account, api_key, register, remember


def _stripe_event() -> tuple[str, bytes]:
    event_id = f"evt_sec{uuid.uuid4().hex[:16]}"
    body = {
        "id": event_id,
        "object": "event",
        "type": "customer.tax_id.created",
        "created": int(time.time()),
        "livemode": False,
        "data": {"object": {"id": f"txi_{uuid.uuid4().hex[:10]}", "object": "tax_id"}},
    }
    return event_id, json.dumps(body).encode()


def test_stripe_webhook_needs_a_fresh_signature_with_our_secret(real: Stack, gateway: str) -> None:
    secret = real.env["STRIPE_WEBHOOK_SECRET"].split(",")[0]
    remember(*real.env["STRIPE_WEBHOOK_SECRET"].split(","))
    _, body = _stripe_event()
    now = int(time.time())
    cases = {
        "wrong_secret": (sign(body, "whsec_not_ours"), "invalid_signature"),
        "old_timestamp": (sign(body, secret, now - 3600), "signature_expired"),
        "tampered_body": (sign(body.replace(b"tax_id", b"tax_iX", 1), secret), "invalid_signature"),
        "no_v1": (f"t={now}", "invalid_signature"),
        "empty": ("", "invalid_signature"),
    }
    with client(gateway) as c:
        for name, (signature, code) in cases.items():
            resp = c.post("/webhooks/stripe", content=body, headers={"Stripe-Signature": signature})
            assert resp.status_code == 400, (name, resp.text)
            assert resp.json()["code"] == code, (name, resp.text)
        # A genuine delivery replayed (Stripe retries; an attacker replays) is taken once, answered 200.
        signed = sign(body, secret)
        first = c.post("/webhooks/stripe", content=body, headers={"Stripe-Signature": signed})
        again = c.post("/webhooks/stripe", content=body, headers={"Stripe-Signature": signed})
        assert first.status_code == 200 and again.status_code == 200, (first.text, again.text)
        # The same body re-signed with a timestamp from before the tolerance window stays refused.
        stale = c.post(
            "/webhooks/stripe", content=body, headers={"Stripe-Signature": sign(body, secret, now - 301)}
        )
        assert stale.status_code == 400 and stale.json()["code"] == "signature_expired"
    print(f"\n[security] stripe webhook: {len(cases) + 1} forged/stale deliveries refused, replay taken once")


SSRF_TARGETS = [
    "http://127.0.0.1/hook",
    "http://10.1.2.3/hook",
    "http://169.254.169.254/latest/meta-data/",
    "http://[::1]/hook",
    "http://localhost/hook",  # a name that resolves to loopback
    "http://[::ffff:10.0.0.1]/hook",  # IPv4-mapped IPv6
]


@pytest.mark.parametrize("url", SSRF_TARGETS)
def test_webhook_endpoint_cannot_target_private_addresses(gateway: str, url: str) -> None:
    owner = register(gateway, "ssrf")
    with client(gateway, ip=owner.ip) as c:
        resp = c.post("/webhooks/endpoints", json={"url": url}, headers=owner.headers())
    assert resp.status_code == 422, resp.text
    assert resp.json()["code"] == "webhook_url_forbidden"


class _Counter(BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_POST(self) -> None:
        type(self).hits.append(self.path)
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def _redirecting_to(target: str) -> type[BaseHTTPRequestHandler]:
    class Redirect(BaseHTTPRequestHandler):
        hits: list[str] = []

        def do_POST(self) -> None:
            type(self).hits.append(self.path)
            self.send_response(307)
            self.send_header("Location", target)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    return Redirect


def _serve(host: str, handler: type[BaseHTTPRequestHandler]) -> tuple[HTTPServer, str]:
    server = HTTPServer((host, 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://{host}:{server.server_address[1]}"


@pytest.fixture
def private_and_redirect() -> Iterator[tuple[type[_Counter], type[BaseHTTPRequestHandler], str]]:
    _Counter.hits = []
    private, private_url = _serve("127.0.0.1", _Counter)
    handler = _redirecting_to(private_url + "/stolen")
    redirector, redirect_url = _serve("127.0.0.2", handler)  # the platform lets tests use 127.0.0.2
    try:
        yield _Counter, handler, redirect_url + "/hook"
    finally:
        private.shutdown()
        redirector.shutdown()


def test_redirect_to_a_private_address_is_not_followed(
    gateway: str, private_and_redirect: tuple[type[_Counter], type[BaseHTTPRequestHandler], str]
) -> None:
    private, redirector, url = private_and_redirect
    owner: Account = register(gateway, "redirect")
    with client(gateway, ip=owner.ip) as c:
        made = c.post(
            "/webhooks/endpoints", json={"url": url, "event_types": ["identity.*"]}, headers=owner.headers()
        )
        assert made.status_code == 201, made.text
        remember(made.json()["secret"])
        api_key(gateway, owner, scopes=["echo:read"])  # identity.api_key.created → a delivery
        poll(lambda: list(redirector.hits), until=bool, timeout=30)
        endpoint = made.json()["id"]
        deliveries = poll(
            lambda: c.get(f"/webhooks/endpoints/{endpoint}/deliveries", headers=bearer(owner.access)).json(),
            until=lambda got: bool(got.get("items") if isinstance(got, dict) else got),
            timeout=30,
        )
    time.sleep(1)
    assert redirector.hits, "the receiver was never called"
    assert private.hits == [], "the redirect to 127.0.0.1 was followed"
    status = deliveries[0]["status"] if isinstance(deliveries, list) else deliveries["items"][0]["status"]
    print(f"\n[security] webhook redirect to a private address: not followed (delivery {status})")
