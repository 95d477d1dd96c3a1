"""Monthly quota counters: the gateway INCRs them in Redis; this rebuilds them after Redis loses data.

The gateway adds 1 to `quota_key(tenant, month)` for every request, at request time, and is
the only writer in normal operation. The usage service stores every request in Postgres
(usage_monthly, usage_hourly, usage_logs) and writes the counter only to give back what a
Redis loss took away.

Detecting a loss: every tick the keeper writes a heartbeat (unix ms) first to Redis (only
ever raised) and then to Postgres (a small ring of recent beats). So in normal operation the
Redis heartbeat is never below Postgres's latest beat. If it is missing, Redis lost all its
data; if it is lower, Redis went back to an older state (restart from a stale AOF/RDB file).

What is given back, per tenant, for the current month: the number of stored requests whose
time lies in [lower, floor), where floor = the latest beat Postgres saw (Redis still had it,
so every INCR before it was there and is now lost) and lower = month start for a full loss,
or, after a rollback, the first beat after the one Redis still has (the state Redis went
back to was saved before that beat was written, so INCRs before it survived). Both ends
are moved inwards by the allowed clock skew, and `lower` also by the longest request: a
record's time is when the request ended, the gateway INCRed when it began. Only metered
records count (`UsageRecord.metered`: the ones the gateway INCRed).

Why nothing is counted twice: a request INCRed after the loss has a time >= floor, so it
is not in [lower, floor); a request from before `lower` is still in the restored counter;
each rebuild belongs to one epoch (a plan in Redis) and a per-tenant marker holds how much
that epoch already added, so repeated passes (late batches, several replicas) add only the
difference, atomically in one Lua script; the plan, the markers and the counter live in the
same Redis, so a later loss wipes them together and starts a new epoch. Edges of the window
whose raw rows were pruned are counted from hourly rollups rounded inwards. The error can
only be an undercount: requests in the seconds between the last beat and the loss, or still
in a gateway's buffer when the plan's settle time runs out.
"""

from __future__ import annotations

import logging
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

from redis.asyncio import Redis

from services.usage import repository
from services.usage.settings import UsageSettings
from shared.db import Pool
from shared.plans import quota_key

log = logging.getLogger("catalytic.usage.quota")

HEARTBEAT = "usage:quota:heartbeat"
PLAN = "usage:quota:rebuild"
RING_SLOTS = 900  # one slot per second: the last 15 minutes of beats
COUNTER_GRACE = timedelta(days=7)  # a rebuilt counter outlives its month by this much

# KEYS: heartbeat, plan. ARGV: heartbeat as read, now, then (on a loss) epoch, lower, floor,
# until, ttl. Compare-and-set on the heartbeat: of replicas that saw the same loss, one plans.
_BEAT = """
local cur = redis.call('GET', KEYS[1]) or '-1'
if cur ~= ARGV[1] then return -1 end
local lost = 0
if ARGV[3] ~= '' then
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[2], 'epoch', ARGV[3], 'lower', ARGV[4], 'floor', ARGV[5], 'until', ARGV[6])
  redis.call('EXPIRE', KEYS[2], ARGV[7])
  lost = 1
end
if tonumber(ARGV[2]) > tonumber(cur) then redis.call('SET', KEYS[1], ARGV[2]) end
return lost
"""

# KEYS: plan, counter, marker. ARGV: epoch, base, marker ttl, counter expiry (unix s).
# Adds what this epoch has not added yet; refuses once the plan is gone or replaced.
_TOPUP = """
if redis.call('HGET', KEYS[1], 'epoch') ~= ARGV[1] then return -1 end
local added = tonumber(redis.call('GET', KEYS[3]) or '0')
local base = tonumber(ARGV[2])
if base <= added then return 0 end
redis.call('INCRBY', KEYS[2], base - added)
redis.call('SET', KEYS[3], ARGV[2], 'EX', ARGV[3])
if redis.call('TTL', KEYS[2]) == -1 then redis.call('EXPIREAT', KEYS[2], ARGV[4]) end
return base - added
"""


class QuotaKeeper:
    def __init__(self, redis: Redis, pool: Pool, settings: UsageSettings) -> None:
        self.redis = redis
        self.pool = pool
        self.skew_ms = round(settings.clock_skew_seconds * 1000)
        self.request_ms = round(settings.max_request_seconds * 1000)
        self.settle_ms = round(settings.quota_settle_seconds * 1000)
        self._beat = redis.register_script(_BEAT)
        self._topup = redis.register_script(_TOPUP)

    async def tick(self, now_ms: int | None = None) -> int:
        """Beat, detect a loss, run a rebuild pass while one is planned; return calls given back."""
        now_ms = now_ms if now_ms is not None else time_ms()
        async with self.pool.acquire() as conn:
            pg_ms = await repository.latest_beat(conn)
            raw = await self.redis.get(HEARTBEAT)
            cur = int(raw) if raw is not None else None
            plan: list[str] = ["", "", "", "", ""]
            if pg_ms is not None and (cur is None or cur < pg_ms):
                lower = -1  # everything before the floor was lost
                if cur is not None:  # went back to an older state: lost what came after it
                    after = await repository.beat_after(conn, cur) or pg_ms
                    lower = after + self.skew_ms + self.request_ms
                ttl = (self.settle_ms + 86_400_000) // 1000
                plan = [uuid.uuid4().hex, str(lower), str(pg_ms - self.skew_ms), str(now_ms + self.settle_ms)]
                plan.append(str(ttl))
            status = await self._beat(keys=[HEARTBEAT, PLAN], args=[raw or b"-1", now_ms, *plan])
            if int(status) < 0:
                return 0  # another replica beat in between; look again next tick
            if int(status) == 1:
                log.warning("Redis lost quota counters (heartbeat %s, last seen %s): rebuilding", cur, pg_ms)
            await repository.record_beat(conn, (now_ms // 1000) % RING_SLOTS, now_ms)
        current = await self.redis.hgetall(PLAN)  # type: ignore[misc]
        if current and int(current[b"until"]) > now_ms:
            return await self.rebuild(current, now_ms)
        return 0

    async def rebuild(self, plan: dict[bytes, bytes], now_ms: int) -> int:
        epoch = plan[b"epoch"].decode()
        now = from_ms(now_ms)
        month_start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        month_end = next_month(month_start)
        lower_ms = int(plan[b"lower"])
        lo = max(from_ms(lower_ms), month_start) if lower_ms >= 0 else month_start
        fl = min(from_ms(int(plan[b"floor"])), now, month_end)
        if fl <= lo:
            return 0
        base = await self._lost_calls(month_start, month_end, lo, fl)
        month = month_start.strftime("%Y-%m")
        expire_at = int((month_end + COUNTER_GRACE).timestamp())
        marker_ttl = (self.settle_ms + 86_400_000) // 1000
        pipe = self.redis.pipeline(transaction=False)
        tenants = [t for t, n in base.items() if n > 0]
        for tenant in tenants:
            counter = quota_key(str(tenant), month)
            marker = f"usage:quota:rebuilt:{epoch}:{tenant}:{month}"
            await self._topup(
                keys=[PLAN, counter, marker], args=[epoch, base[tenant], marker_ttl, expire_at], client=pipe
            )
        added = sum(max(int(n), 0) for n in await pipe.execute()) if tenants else 0
        if added:
            log.warning("gave back %d calls to %d tenants' quota counters for %s", added, len(tenants), month)
        return added

    async def _lost_calls(
        self, month_start: datetime, month_end: datetime, lo: datetime, fl: datetime
    ) -> dict[Any, int]:
        """Per tenant: stored calls with time in [lo, fl), never more (see the module doc)."""
        async with self.pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
            monthly = await repository.monthly_by_tenant(conn, month_start.date())
            # Calls before fl, at least: the rollups up to fl's hour, plus raw rows of that hour.
            hour = floor_hour(fl)
            after = await repository.hourly_metered_between(conn, hour, month_end)
            partial = await repository.raw_metered_between(conn, hour, fl)
            upto_fl = {t: n - after.get(t, 0) + partial.get(t, 0) for t, n in monthly.items()}
            if lo == month_start:
                return upto_fl
            # Calls before lo, at most: rollups up to lo's next hour, minus raw rows past lo.
            hour = ceil_hour(lo)
            after = await repository.hourly_metered_between(conn, hour, month_end)
            partial = await repository.raw_metered_between(conn, lo, hour) if hour > lo else {}
            upto_lo = {t: n - after.get(t, 0) - partial.get(t, 0) for t, n in monthly.items()}
        return {t: n - upto_lo.get(t, 0) for t, n in upto_fl.items()}


def time_ms() -> int:
    return time.time_ns() // 1_000_000


def from_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def floor_hour(at: datetime) -> datetime:
    return at.replace(minute=0, second=0, microsecond=0)


def ceil_hour(at: datetime) -> datetime:
    hour = floor_hour(at)
    return hour if hour == at else hour + timedelta(hours=1)


def next_month(month_start: datetime) -> datetime:
    return (month_start + timedelta(days=32)).replace(day=1)


def month_of(at: datetime) -> tuple[str, date]:
    """The quota counter's month (UTC) as the gateway names it, and its first day."""
    at = at.astimezone(UTC)
    return at.strftime("%Y-%m"), date(at.year, at.month, 1)
