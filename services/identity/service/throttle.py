"""Login throttling in Redis, designed so an attacker cannot lock an owner out for good.

- per (account, IP): after `free` failures the pair is locked for base·2^n seconds (capped);
  the owner on any other IP is not affected;
- per IP across accounts: too many failures in a window block that IP (credential stuffing);
- per account across IPs: a capped lock for IPs that never logged in to the account; IPs that
  did (within `known_ip_days`) skip it, and a password reset clears it.
Unknown emails are throttled exactly like known ones, so throttling reveals nothing.
"""

from __future__ import annotations

import hashlib
import math
import time
from typing import Any

from redis.asyncio import Redis

from services.identity.errors import LoginThrottled
from services.identity.settings import IdentitySettings

# KEYS: pair_fails, pair_lock, ip_fails, acct_fails, acct_lock, busy
# ARGV: free, base, cap, window, ip_window, acct_max, acct_window, acct_cap
_RECORD_FAILURE = """
local pair = redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], ARGV[4])
local ip = redis.call('INCR', KEYS[3])
if ip == 1 then redis.call('EXPIRE', KEYS[3], ARGV[5]) end
local acct = redis.call('INCR', KEYS[4])
if acct == 1 then redis.call('EXPIRE', KEYS[4], ARGV[7]) end
redis.call('DEL', KEYS[6])
local free = tonumber(ARGV[1])
if pair >= free then
  local lock = math.min(tonumber(ARGV[3]), tonumber(ARGV[2]) * 2 ^ math.min(pair - free, 30))
  redis.call('SET', KEYS[2], '1', 'EX', math.max(1, math.floor(lock)))
end
local amax = tonumber(ARGV[6])
if acct >= amax then
  local lock = math.min(tonumber(ARGV[8]), tonumber(ARGV[2]) * 2 ^ math.min(acct - amax, 30))
  redis.call('SET', KEYS[5], '1', 'EX', math.max(1, math.floor(lock)))
end
return {pair, ip, acct}
"""


def account_key(email: str) -> str:
    # Emails never appear in Redis key names (they show up in monitoring and dumps).
    return hashlib.sha256(email.encode()).hexdigest()[:32]


class LoginThrottle:
    def __init__(self, redis: Redis, settings: IdentitySettings) -> None:
        self.redis = redis
        self.s = settings
        self._record = redis.register_script(_RECORD_FAILURE)

    def _keys(self, email: str, ip: str | None) -> dict[str, str]:
        acct, addr = account_key(email), ip or "unknown"
        return {
            "pair_fails": f"login:fails:{acct}:{addr}",
            "pair_lock": f"login:lock:{acct}:{addr}",
            "ip_fails": f"login:ipfails:{addr}",
            "acct_fails": f"login:acctfails:{acct}",
            "acct_lock": f"login:acctlock:{acct}",
            "busy": f"login:busy:{acct}:{addr}",
            "known": f"login:known:{acct}",
        }

    async def check(self, email: str, ip: str | None) -> None:
        """Raise LoginThrottled (429 with Retry-After) or claim the one attempt in flight."""
        k = self._keys(email, ip)
        pipe = self.redis.pipeline(transaction=False)
        pipe.ttl(k["pair_lock"])
        pipe.get(k["ip_fails"])
        pipe.ttl(k["ip_fails"])
        pipe.ttl(k["acct_lock"])
        pipe.zscore(k["known"], ip or "unknown")
        pair_ttl, ip_fails, ip_ttl, acct_ttl, known = await pipe.execute()
        if pair_ttl > 0:
            raise _throttled(pair_ttl, "too many failed logins for this account from your address")
        if ip_fails is not None and int(ip_fails) >= self.s.login_ip_max_failures:
            raise _throttled(ip_ttl, "too many failed logins from your address")
        if acct_ttl > 0 and known is None:
            raise _throttled(acct_ttl, "too many failed logins for this account; try again later")
        # One attempt at a time per (account, IP): parallel guesses cannot slip past a lock.
        if not await self.redis.set(k["busy"], "1", nx=True, ex=10):
            raise _throttled(1, "another login for this account is in progress")

    async def failed(self, email: str, ip: str | None) -> None:
        k = self._keys(email, ip)
        s = self.s
        keys: list[Any] = [
            k[n] for n in ("pair_fails", "pair_lock", "ip_fails", "acct_fails", "acct_lock", "busy")
        ]
        args: list[Any] = [
            s.login_free_attempts,
            s.login_lock_base_seconds,
            s.login_lock_max_seconds,
            s.login_failure_window_seconds,
            s.login_ip_window_seconds,
            s.login_account_max_failures,
            s.login_account_window_seconds,
            s.login_account_lock_max_seconds,
        ]
        await self._record(keys=keys, args=args)

    async def succeeded(self, email: str, ip: str | None) -> None:
        k = self._keys(email, ip)
        horizon = self.s.login_known_ip_days * 86_400
        now = time.time()
        pipe = self.redis.pipeline(transaction=True)
        pipe.delete(k["pair_fails"], k["pair_lock"], k["busy"])
        pipe.zadd(k["known"], {ip or "unknown": now})
        pipe.zremrangebyscore(k["known"], "-inf", now - horizon)
        pipe.zremrangebyrank(k["known"], 0, -51)  # the 50 most recent addresses are enough
        pipe.expire(k["known"], horizon)
        await pipe.execute()

    async def release(self, email: str, ip: str | None) -> None:
        await self.redis.delete(self._keys(email, ip)["busy"])

    async def clear_account(self, email: str) -> None:
        """A completed password reset proves the owner: lift the account-wide lock."""
        k = self._keys(email, None)
        await self.redis.delete(k["acct_fails"], k["acct_lock"])


def _throttled(seconds: int, message: str) -> LoginThrottled:
    retry = max(1, math.ceil(seconds))
    return LoginThrottled(f"{message} (retry in {retry} s)", headers={"Retry-After": str(retry)})
