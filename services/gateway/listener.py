"""Fan-out readers of identity.events and billing.events: every gateway instance sees every event.

Plain XREAD (no consumer group): each instance must drop its own cached API key and learn each
plan change, and nothing here needs to be done exactly once. Reading starts at the streams'
current ends; a blocking read returns within milliseconds of an XADD.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from redis.asyncio import Redis
from redis.exceptions import RedisError

from shared import events
from shared.events import BILLING_STREAM, IDENTITY_STREAM

log = logging.getLogger("catalytic.gateway.listener")

PLAN_KEY_TTL = 86_400  # tokens and key caches carry the new plan long before this


RevokeKey = Callable[[str, str], Awaitable[None]]

_PLAN_EVENTS = frozenset(
    {
        b"billing.subscription.activated",
        b"billing.subscription.changed",
        b"billing.subscription.canceled",
        b"identity.tenant.plan_changed",
    }
)
_KEY_REVOKED = b"identity.api_key.revoked"


class Listener:
    def __init__(self, redis: Redis, revoke_key: RevokeKey, block_ms: int = 1000) -> None:
        self._redis = redis
        self._revoke_key = revoke_key
        self.block_ms = block_ms
        self.plans: dict[str, str] = {}  # tenant id -> plan from the latest billing event
        self.handled = 0
        self.ready = asyncio.Event()

    async def _tails(self) -> dict[str, str]:
        tails: dict[str, str] = {}
        for stream in (IDENTITY_STREAM, BILLING_STREAM):
            last = await self._redis.xrevrange(stream, count=1)
            tails[stream] = last[0][0].decode() if last else "0-0"
        return tails

    async def run(self, stop: asyncio.Event) -> None:
        positions: dict[str, str] | None = None
        while not stop.is_set():
            try:
                if positions is None:
                    positions = await self._tails()
                    self.ready.set()
                reply = await self._redis.xread(positions, count=500, block=self.block_ms)  # type: ignore[arg-type]
            except (RedisError, OSError) as exc:
                log.warning("event listener lost Redis, retrying: %s", exc)
                await asyncio.sleep(0.5)
                continue
            for stream_name, entries in reply or ():
                stream = stream_name.decode() if isinstance(stream_name, bytes) else stream_name
                for entry_id, fields in entries:
                    positions[stream] = entry_id.decode()
                    try:
                        await self._handle(fields)
                    except Exception:  # one bad entry must not stop revocations
                        log.exception("gateway could not apply event %s on %s", entry_id, stream)

    async def _handle(self, fields: dict[bytes, bytes]) -> None:
        kind = fields.get(b"type", b"")
        if kind != _KEY_REVOKED and kind not in _PLAN_EVENTS:
            return
        event = events.decode(fields[b"event"])
        data = event.data
        if isinstance(data, events.ApiKeyRevoked):
            await self._revoke_key(data.prefix, data.key_hash)
        elif event.tenant_id is not None:
            if isinstance(data, events.SubscriptionCanceled):
                plan = "free"
            elif isinstance(data, events.TenantPlanChanged):
                plan = data.new_plan
            elif isinstance(data, events.SubscriptionActivated | events.SubscriptionChanged):
                plan = data.plan
            else:
                return
            tenant = str(event.tenant_id)
            self.plans[tenant] = plan
            await self._redis.set(f"tenant:plan:{tenant}", plan, ex=PLAN_KEY_TTL)
        self.handled += 1
