"""Guessing passwords and flooding resets through the gateways.

Identity throttles per (account, IP), per IP, and account-wide with a cap that addresses the owner
used before skip (tests/identity/test_throttle.py covers the mechanics against identity itself).
Here the point is the gateway in front: a client cannot pick its own IP with X-Forwarded-For unless
it connects from a trusted proxy, and the owner is never locked out for good."""

from __future__ import annotations

import time

from tests.gateway.conftest import Stack
from tests.gateway.support import client, random_ip
from tests.platform import Platform
from tests.security.conftest import PASSWORD, login, mailbox, register

WRONG = "Definitely-Wrong-Guess-1"


def test_spoofed_forwarded_for_does_not_dodge_the_throttle(platform: Platform, gateway: str) -> None:
    victim = register(gateway, "guess")
    direct = platform.url("gateway")  # trusts no proxy: the socket address is the client
    answers = []
    with client(direct) as c:
        for _ in range(30):
            resp = c.post(
                "/auth/login",
                json={"email": victim.email, "password": WRONG},
                headers={"X-Forwarded-For": random_ip()},  # a fresh lie every time
            )
            answers.append(resp.status_code)
        right = c.post(
            "/auth/login",
            json={"email": victim.email, "password": PASSWORD},
            headers={"X-Forwarded-For": random_ip()},
        )
    evaluated = answers.count(401)
    # 5 guesses, then a lock that grows (1 s, 2 s, 4 s…): a slow run may see one or two more.
    assert evaluated <= 8, answers
    assert set(answers) <= {401, 429}
    assert right.status_code == 429 and right.json()["code"] == "login_throttled"
    assert "retry-after" in right.headers
    # The owner, elsewhere (a trusted proxy forwards their real address), still gets in.
    assert login(gateway, victim.email, PASSWORD, ip=random_ip()).status_code == 200
    print(
        f"\n[security] brute force: {evaluated} of 30 guesses evaluated, the rest 429; owner not locked out"
    )


def test_botnet_guesses_hit_a_capped_lock_the_owner_skips(real: Stack, gateway: str) -> None:
    victim = register(gateway, "botnet")
    home = victim.ip
    assert login(gateway, victim.email, PASSWORD, ip=home).status_code == 200
    statuses = [login(gateway, victim.email, WRONG, ip=random_ip()).status_code for _ in range(25)]
    assert 429 in statuses, statuses  # the account-wide lock engaged
    stranger = login(gateway, victim.email, PASSWORD, ip=random_ip())
    assert stranger.status_code == 429
    assert int(stranger.headers["retry-after"]) <= 300  # capped, never permanent
    assert login(real.gateways[1], victim.email, PASSWORD, ip=home).status_code == 200


def test_password_reset_cannot_flood_an_inbox(gateway: str) -> None:
    victim = register(gateway, "flood")
    with client(gateway, ip=random_ip()) as c:
        answers = [
            c.post("/auth/password-reset", json={"email": victim.email}).status_code for _ in range(12)
        ]
        unknown = c.post("/auth/password-reset", json={"email": "nobody-" + victim.email})
    assert answers == [202] * 12, str(answers)
    assert unknown.status_code == 202  # whether an account exists is never told
    time.sleep(3)  # let the notifier send whatever it was asked to
    resets = [m for m in mailbox().to(victim.email) if "password" in str(m["Subject"]).lower()]
    assert 1 <= len(resets) <= 5, len(resets)
    print(f"\n[security] reset flood: 12 requests -> {len(resets)} mails")
