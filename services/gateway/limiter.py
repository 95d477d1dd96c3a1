"""Limits in one Redis round trip: revocation checks, sliding-window rate limit, monthly quota.

One Lua script per request answers everything the gateway must ask Redis: is the token's
`jti` revoked, was the user's session revoked after the token was issued, which plan applies
(a billing override in `tenant:plan:{id}` beats the token's claim), is the tenant under its
per-minute limit (an exact sliding-window log: no more than `limit` requests in any 60 s),
and is its monthly quota left (`quota_key`), counting the call when it passes. The clock is
Redis's own, so every gateway instance shares it.
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass
from typing import Any

from services.gateway.errors import LimiterUnavailable
from services.gateway.redispipe import RedisPipe, RedisPipeError, Script
from shared.plans import PLANS

WINDOW_MS = 60_000
QUOTA_TTL_SECONDS = 40 * 86_400  # a month and some: usage persists the count meanwhile
_NONE = b"-"  # placeholder for a key that does not apply to this request
_QUOTA_TTL = b"%d" % QUOTA_TTL_SECONDS
_WINDOW = b"%d" % WINDOW_MS

OK, RATE_LIMITED, QUOTA_EXCEEDED, JTI_REVOKED, USER_REVOKED = 0, 1, 2, 3, 4


def _plan_table() -> str:
    # plan id -> {requests per minute, calls per month, 1 when the quota is a hard limit (no overage)}
    rows = ", ".join(
        f'["{p.id}"] = {{{p.requests_per_minute}, {p.calls_per_month}, {int(p.overage_cents_per_1000 == 0)}}}'
        for p in PLANS.values()
    )
    return "{" + rows + "}"


# KEYS: window, quota, revoked jti, revoked user, plan override
# ARGV: limits on (1/0), claimed plan, token iat, window member, metered (1/0), fixed limit (0 = plan),
#       quota ttl, window ms
SCRIPT = (
    """
local PLANS = """
    + _plan_table()
    + """
if KEYS[3] ~= '-' and redis.call('EXISTS', KEYS[3]) == 1 then return {3} end
if KEYS[4] ~= '-' then
  local since = redis.call('GET', KEYS[4])
  if since and tonumber(ARGV[3]) < tonumber(since) then return {4} end
end
local plan = ARGV[2]
if KEYS[5] ~= '-' then
  local override = redis.call('GET', KEYS[5])
  if override then plan = override end
end
if ARGV[1] ~= '1' then return {0, plan} end
local spec = PLANS[plan]
if not spec then plan = 'free'; spec = PLANS['free'] end
local limit = tonumber(ARGV[6])
if limit == 0 then limit = spec[1] end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[8])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local count = redis.call('ZCARD', KEYS[1])
if count >= limit then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return {1, plan, limit, 0, tonumber(oldest[2]) + window - now, 0, 0}
end
local qlimit, qused = 0, 0
if ARGV[5] == '1' then
  qlimit = spec[2]
  qused = tonumber(redis.call('GET', KEYS[2]) or '0')
  if spec[3] == 1 and qused >= qlimit then
    return {2, plan, limit, limit - count, 0, qlimit, qused}
  end
  qused = redis.call('INCR', KEYS[2])
  if qused == 1 then redis.call('EXPIRE', KEYS[2], ARGV[7]) end
end
redis.call('ZADD', KEYS[1], now, ARGV[4])
redis.call('PEXPIRE', KEYS[1], window)
local reset = window
if count > 0 then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  reset = tonumber(oldest[2]) + window - now
end
return {0, plan, limit, limit - count - 1, reset, qlimit, qused}
"""
)


@dataclass(frozen=True, slots=True)
class Decision:
    status: int
    plan: str | None = None
    limit: int = 0  # 0: no rate-limit figures to report
    remaining: int = 0
    reset_ms: int = 0
    quota_limit: int = 0
    quota_used: int = 0


class Limiter:
    def __init__(self, redis: RedisPipe, *, enabled: bool, anonymous_per_minute: int) -> None:
        self._script = Script(redis, SCRIPT)
        self.enabled = enabled
        self.anonymous_per_minute = anonymous_per_minute
        # Window members must be unique per request; client-chosen request ids could collide.
        self._member_prefix = os.urandom(6).hex().encode() + b":"
        self._counter = itertools.count()

    async def tenant(
        self,
        tenant_id: str,
        plan: str,
        *,
        month: str,
        metered: bool,
        jti: str | None = None,
        user_id: str | None = None,
        iat: int = 0,
    ) -> Decision:
        keys = (
            b"rl:tenant:" + tenant_id.encode(),
            b"quota:%s:%s" % (tenant_id.encode(), month.encode()),  # shared.plans.quota_key
            b"revoked:jti:" + jti.encode() if jti else _NONE,
            b"revoked:user:" + user_id.encode() if user_id else _NONE,
            b"tenant:plan:" + tenant_id.encode(),
        )
        return await self._run(keys, plan.encode(), iat, metered, 0)

    async def ip(self, ip: str) -> Decision:
        keys = (b"rl:ip:" + ip.encode(), _NONE, _NONE, _NONE, _NONE)
        return await self._run(keys, b"", 0, False, self.anonymous_per_minute)

    async def _run(
        self, keys: tuple[bytes, ...], plan: bytes, iat: int, metered: bool, fixed: int
    ) -> Decision:
        args = (
            b"1" if self.enabled else b"0",
            plan,
            b"%d" % iat,
            b"%s%d" % (self._member_prefix, next(self._counter)),
            b"1" if metered else b"0",
            b"%d" % fixed,
            _QUOTA_TTL,
            _WINDOW,
        )
        try:
            reply: list[Any] = await self._script(keys, args)
        except (RedisPipeError, OSError, TimeoutError) as exc:
            raise LimiterUnavailable() from exc
        status = int(reply[0])
        if len(reply) == 1:
            return Decision(status)
        plan_used = reply[1].decode() if isinstance(reply[1], bytes) else str(reply[1])
        if len(reply) == 2:
            return Decision(status, plan_used)
        return Decision(status, plan_used, *(int(x) for x in reply[2:7]))
