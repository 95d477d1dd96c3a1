"""Containers killed (SIGKILL) and started again: every event still arrives, exactly once."""

from __future__ import annotations

from collections import Counter

import httpx

from tests.compose.conftest import Account, Compose, Mailbox, poll, register

WELCOME, VERIFY = "Welcome to", "Confirm your email address"


def _mail_once_each(mail: Mailbox, accounts: list[Account]) -> None:
    for account in accounts:
        mail.wait_for(account.email, WELCOME, timeout=90)
        mail.wait_for(account.email, VERIFY, timeout=90)
        counts = Counter(mail.subjects(account.email))
        assert all(n == 1 for n in counts.values()), counts


def _recent_identity_events(compose: Compose) -> str:
    return compose.exec("redis", "redis-cli", "XREVRANGE", "identity.events", "+", "-", "COUNT", "100")


def test_workers_killed_while_events_are_produced_lose_nothing(
    compose: Compose, gateway: httpx.Client, mail: Mailbox
) -> None:
    # identity's outbox relay and the notifier's consumers die without a chance to clean up.
    compose.kill("identity-worker", "notifier-worker")

    # Sign-ups commit their events to identity's outbox; nothing can publish or consume them yet.
    accounts = [register(gateway, f"while-down-{i}") for i in range(3)]
    assert all(mail.to(a.email) == [] for a in accounts)

    compose.run("start", "identity-worker", "notifier-worker")
    compose.wait_healthy("identity-worker")
    compose.wait_healthy("notifier-worker")
    _mail_once_each(mail, accounts)


def test_redis_killed_keeps_published_events(compose: Compose, gateway: httpx.Client, mail: Mailbox) -> None:
    compose.kill("notifier-worker")
    account = register(gateway, "redis-killed")

    # Wait until the relay has put the sign-up on the stream, then kill Redis itself.
    def on_stream() -> bool | None:
        return True if account.email in _recent_identity_events(compose) else None

    poll(on_stream, timeout=60)
    compose.kill("redis")
    compose.run("start", "redis")
    compose.wait_healthy("redis")
    assert account.email in _recent_identity_events(compose)  # the append-only file kept it

    compose.run("start", "notifier-worker")
    compose.wait_healthy("notifier-worker")
    _mail_once_each(mail, [account])
    # The platform talks to the new Redis: a fresh sign-up still gets its mail.
    later = register(gateway, "after-redis")
    _mail_once_each(mail, [later])
