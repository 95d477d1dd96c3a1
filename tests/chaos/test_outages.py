"""Peers that go away for a while: the SMTP server, a tenant's webhook receiver, a product upstream.
Mail and webhooks are delivered exactly once when the peer is back; the gateway answers 502/504
at once while an upstream is away, recovers when it returns, and keeps no connections behind."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import httpx
import pytest
from redis.asyncio import Redis

from shared.devstack import DevEnv, DevStack
from shared.devstack.mailcatcher import start_mailcatcher
from shared.events import PaymentSucceeded
from tests.chaos.conftest import LONG, wait_until
from tests.gateway.conftest import Proc, free_port, gateway_env, spawn
from tests.gateway.support import bearer, mint
from tests.notifier.helpers import Mailbox, admin_of, emit, event
from tests.platform import Platform
from tests.support import anonymous

MAILS = 40 if LONG else 10
HOOKS = 100 if LONG else 20


def _register(platform: Platform) -> str:
    email = f"outage-{uuid.uuid4().hex[:12]}@example.com"
    body = {"email": email, "password": "Velvet-Orbit-Lantern-42", "company_name": "Outage Co"}
    resp = httpx.post(f"{platform.url('identity')}/auth/register", json=body, headers=anonymous("identity"))
    assert resp.status_code == 201, resp.text
    return email


def _mailcatcher(stack: DevStack) -> object:
    [found] = [c for c in stack._children if "mailcatcher" in c.name]
    return found


def test_mail_sent_while_smtp_is_down_arrives_once(
    platform: Platform, peers: DevEnv, stack: DevStack
) -> None:
    mailbox = Mailbox(peers.mail_dir, stack.smtp_control_path)
    emails = [_register(platform) for _ in range(MAILS)]
    for address in emails:
        mailbox_wait(mailbox, address, 2)
    catcher = _mailcatcher(stack)
    catcher.stop()  # type: ignore[attr-defined]
    stack._children.remove(catcher)  # type: ignore[arg-type]
    try:
        for address in emails:  # a password reset: one more mail each, asked for while SMTP is away
            resp = httpx.post(
                f"{platform.url('identity')}/auth/password-reset",
                json={"email": address},
                headers=anonymous("identity"),
            )
            assert resp.status_code == 202
        time.sleep(6)
        assert all(len(mailbox.to(a)) == 2 for a in emails)  # nothing could have been sent
    finally:
        stack._children.insert(
            0,
            start_mailcatcher(
                "127.0.0.1", stack.ports.smtp, peers.mail_dir, stack.smtp_control_path, stack.logs
            ),
        )
    wait_until(lambda: all(len(mailbox.to(a)) >= 3 for a in emails), "the held-back mail", 90)
    time.sleep(3)
    counts = Counter(len(mailbox.to(a)) for a in emails)
    print(
        f"\n[chaos] SMTP down ~6 s: {MAILS} resets mailed after it came back;"
        f" mails per address {dict(counts)}"
    )
    assert counts == {3: MAILS}


def mailbox_wait(mailbox: Mailbox, address: str, count: int) -> None:
    wait_until(lambda: len(mailbox.to(address)) >= count, f"{count} mails to {address}", 60)


class _Hooks(BaseHTTPRequestHandler):
    seen: Counter[str] = Counter()

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        type(self).seen[self.headers.get("webhook-id", "")] += 1
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def _serve(port: int) -> HTTPServer:
    server = HTTPServer(("127.0.0.2", port), _Hooks)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def test_webhooks_held_while_the_receiver_is_down_arrive_once(platform: Platform, peers: DevEnv) -> None:
    _Hooks.seen = Counter()
    port = free_port()
    tenant = uuid.uuid4()
    made = httpx.post(
        f"{platform.url('notifier')}/webhooks/endpoints",
        json={"url": f"http://127.0.0.2:{port}/hooks", "event_types": ["billing.payment.succeeded"]},
        headers=admin_of(tenant),
    )
    assert made.status_code == 201, made.text
    sent = [
        event(PaymentSucceeded(invoice_id=f"in_{i}", amount_cents=100, currency="usd"), tenant)
        for i in range(HOOKS)
    ]

    async def publish() -> None:
        redis = Redis.from_url(peers.redis_url)
        try:
            for e in sent:
                await emit(redis, e)
        finally:
            await redis.aclose()

    asyncio.run(publish())  # nobody listens on the port: every first attempt fails
    time.sleep(2)
    server = _serve(port)
    try:
        ids = {str(e.id) for e in sent}
        wait_until(lambda: ids <= set(_Hooks.seen), "every held-back webhook", 60)
        time.sleep(3)
    finally:
        server.shutdown()
        server.server_close()
    twice = [k for k, n in _Hooks.seen.items() if n > 1]
    print(f"\n[chaos] receiver down ~2 s: {len(ids)} webhooks delivered after, {len(twice)} twice")
    assert not twice and set(_Hooks.seen) == ids


@pytest.fixture
def upstream(platform: Platform) -> Iterator[tuple[Proc, Proc]]:
    """A product upstream (the echo peer) behind a gateway of its own, with the real identity."""
    peer_port = free_port()
    peer_url = f"http://127.0.0.1:{peer_port}"
    peer = spawn("chaos-peer", ["-m", "tests.gateway.peer", str(peer_port)], platform.env, peer_url)
    env = gateway_env(platform, peer_url, f"http://127.0.0.1:{free_port()}")
    for svc in ("identity", "billing", "notifier", "usage"):
        env.pop(f"GATEWAY_{svc.upper()}_URL")
    port = free_port()
    gateway = spawn(
        "chaos-gateway",
        ["-m", "shared.cli", "serve", "gateway", "--port", str(port)],
        env,
        f"http://127.0.0.1:{port}",
    )
    try:
        yield peer, gateway
    finally:
        if peer.popen.poll() is None:
            os.kill(peer.popen.pid, signal.SIGCONT)
        gateway.stop()
        peer.stop()


def _sockets(pid: int) -> int:
    count = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        with contextlib.suppress(FileNotFoundError):  # closed while we looked
            count += os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:")
    return count


async def _load(base: str, path: str, n: int, token: str) -> tuple[Counter[int], float]:
    async with httpx.AsyncClient(base_url=base, timeout=20) as c:

        async def one() -> tuple[int, float]:
            began = time.monotonic()
            resp = await c.get(path, headers=bearer(token))
            return resp.status_code, time.monotonic() - began

        got = await asyncio.gather(*(one() for _ in range(n)))
    return Counter(s for s, _ in got), max(t for _, t in got)


def test_gateway_fails_fast_and_recovers_when_an_upstream_is_away(upstream: tuple[Proc, Proc]) -> None:
    peer, gateway = upstream
    token = mint(plan="enterprise")
    n = 200 if LONG else 60
    ok, _ = asyncio.run(_load(gateway.url, "/echo", 20, token))
    assert ok == {200: 20}
    baseline = _sockets(gateway.popen.pid)
    # Stopped (SIGSTOP): connections are accepted by the kernel but never answered → 504 at the
    # route's timeout (1 s on /slow), not a hang.
    os.kill(peer.popen.pid, signal.SIGSTOP)
    stopped, slowest_504 = asyncio.run(_load(gateway.url, "/slow?seconds=0", n, token))
    os.kill(peer.popen.pid, signal.SIGCONT)
    assert stopped == {504: n}, stopped
    back, _ = asyncio.run(_load(gateway.url, "/echo", n, token))
    assert back == {200: n}
    # Killed: nothing listens → 502 at once.
    peer.popen.kill()
    peer.popen.wait()
    gone, slowest_502 = asyncio.run(_load(gateway.url, "/echo", n, token))
    assert gone == {502: n}, gone
    time.sleep(5)  # idle pooled connections close after GATEWAY_UPSTREAM_KEEPALIVE_SECONDS (4 s)
    after = _sockets(gateway.popen.pid)
    print(
        f"\n[chaos] upstream away: {n} x 504 (slowest {slowest_504:.1f} s, route timeout 1 s), "
        f"{n} x 502 (slowest {slowest_502:.2f} s); gateway sockets {baseline} before, {after} after"
    )
    assert after <= baseline + 2, (baseline, after)
