"""Login throttling: per (account, IP) exponential lock, per-IP limit, capped account-wide lock
that IPs the owner used before skip, so an attacker cannot lock the owner out for good."""

from __future__ import annotations

import time

from services.identity.service.throttle import account_key
from tests.identity.conftest import PASSWORD, Identity, random_ip, unique_email

WRONG = "Definitely-Wrong-Guess-1"


def _retry_after(resp: object) -> int:
    headers = resp.headers  # type: ignore[attr-defined]
    return int(headers["retry-after"])


def test_pair_lock_grows_and_spares_the_owner_elsewhere(identity: Identity) -> None:
    acct = identity.register()
    attacker = random_ip()
    for _ in range(5):
        assert identity.login(acct.email, WRONG, ip=attacker).status_code == 401
    locked = identity.login(acct.email, PASSWORD, ip=attacker)  # even the right password waits
    assert locked.status_code == 429
    assert locked.json()["code"] == "login_throttled"
    first = _retry_after(locked)
    assert 1 <= first <= 2
    # The owner on another address is not affected.
    assert identity.login(acct.email, ip=random_ip()).status_code == 200

    deadline = time.monotonic() + 10
    while identity.login(acct.email, WRONG, ip=attacker).status_code == 429:
        assert time.monotonic() < deadline, "the pair lock never lifted"
        time.sleep(0.2)
    again = identity.login(acct.email, WRONG, ip=attacker)
    assert again.status_code == 429
    assert _retry_after(again) > first  # 1 s, then 2 s, 4 s … up to the cap


def test_unknown_emails_are_throttled_like_known_ones(identity: Identity) -> None:
    ghost, ip = unique_email("ghost"), random_ip()
    answers = [identity.login(ghost, WRONG, ip=ip).status_code for _ in range(6)]
    assert answers == [401] * 5 + [429]


def test_one_ip_spraying_many_accounts_is_blocked(identity: Identity) -> None:
    sprayer = random_ip()
    victim = identity.register()
    for _ in range(100):  # different accounts each time: no pair lock, only the IP counter
        assert identity.login(unique_email("spray"), WRONG, ip=sprayer).status_code == 401
    blocked = identity.login(victim.email, PASSWORD, ip=sprayer)
    assert blocked.status_code == 429
    assert _retry_after(blocked) <= 900
    assert identity.login(victim.email, ip=random_ip()).status_code == 200


def test_account_wide_lock_is_capped_and_skipped_by_known_ips(identity: Identity) -> None:
    acct = identity.register()
    home = random_ip()
    assert identity.login(acct.email, ip=home).status_code == 200  # the owner's usual address
    for _ in range(20):  # a botnet: one guess per address
        assert identity.login(acct.email, WRONG, ip=random_ip()).status_code == 401
    stranger = identity.login(acct.email, PASSWORD, ip=random_ip())
    assert stranger.status_code == 429
    assert _retry_after(stranger) <= 300  # IDENTITY_LOGIN_ACCOUNT_LOCK_MAX_SECONDS
    assert identity.login(acct.email, ip=home).status_code == 200

    # More guesses keep it capped, never a permanent lock.
    for _ in range(15):
        identity.login(acct.email, WRONG, ip=random_ip())
    assert 0 < identity.redis.ttl(f"login:acctlock:{account_key(acct.email)}") <= 300
    assert identity.login(acct.email, ip=home).status_code == 200
    # A password reset proves the owner and lifts the account-wide lock for new addresses too.
    identity.post("/auth/password-reset", {"email": acct.email})
    token = identity.event("identity.password_reset.requested", user_id=acct.user_id).data.token
    new_password = "Granite-Meadow-Signal-73"
    done = identity.post("/auth/password-reset/confirm", {"token": token, "new_password": new_password})
    assert done.status_code == 204
    assert identity.login(acct.email, new_password, ip=random_ip()).status_code == 200
