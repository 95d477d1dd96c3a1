"""Revocation keys in Redis, exactly as the gateway reads them (the cross-service contract).

Written before the transaction commits: if the commit then fails, a token was revoked for
nothing (safe); written after, a Redis hiccup would leave a stolen token working (unsafe).
"""

from __future__ import annotations

import time
from uuid import UUID

from redis.asyncio import Redis


async def revoke_jti(redis: Redis, jti: str, remaining_seconds: float) -> None:
    """One access token, until it would have expired anyway."""
    await redis.set(f"revoked:jti:{jti}", "1", ex=max(1, int(remaining_seconds) + 1))


async def revoke_user(redis: Redis, user_id: UUID, access_ttl: int) -> None:
    """Every access token of the user issued before now (iat < value)."""
    await redis.set(f"revoked:user:{user_id}", str(int(time.time())), ex=access_ttl)
