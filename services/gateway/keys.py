"""API keys: identity verifies (by prefix and secret hash); the gateway caches the answer.

Lookups go in-process cache → Redis (shared by every gateway, short TTL) → identity's
`POST /internal/api-keys/verify`, one call per key at a time however many requests wait.
A revocation event drops the key everywhere and leaves a tombstone, so a verification that was
already on its way back from identity cannot put the revoked key back into a cache.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime
from uuid import UUID

import aiohttp
import msgspec
from redis.asyncio import Redis
from redis.exceptions import RedisError

from services.gateway.errors import IdentityUnavailable
from services.gateway.principal import Principal
from shared.auth import apikeys
from shared.auth.assertion import HEADER, AssertionSigner, Caller
from shared.auth.errors import ApiKeyInvalid

log = logging.getLogger("catalytic.gateway.apikeys")

CACHE_MAX = 100_000
_STORE = """
if redis.call('EXISTS', KEYS[2]) == 0 then redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2]) end
"""


class KeyVerification(msgspec.Struct, frozen=True, kw_only=True):
    """identity's answer (the contract of POST /internal/api-keys/verify)."""

    key_id: UUID
    tenant_id: UUID
    scopes: tuple[str, ...] = ()
    plan: str = "free"
    expires_at: datetime | None = None


_decode = msgspec.json.Decoder(KeyVerification).decode
_encode = msgspec.json.Encoder().encode


def _principal(v: KeyVerification) -> Principal:
    return Principal(
        kind="api_key",
        tenant=str(v.tenant_id),
        tenant_id=v.tenant_id,
        api_key_id=v.key_id,
        plan=v.plan,
        scopes=v.scopes,
        expires_at=v.expires_at.timestamp() if v.expires_at is not None else None,
    )


def cache_key(prefix: str, secret_hash: str, env: str) -> str:
    # The env label is part of the key: a live key presented as `cc_test_…` is a different key.
    return f"{prefix}:{secret_hash}:{env}"


class ApiKeyAuthenticator:
    def __init__(
        self,
        redis: Redis,
        http: aiohttp.ClientSession,
        signer: AssertionSigner,
        *,
        verify_url: str,
        local_ttl: float,
        redis_ttl: int,
        negative_ttl: float,
    ) -> None:
        self._redis = redis
        self._http = http
        self._signer = signer
        self.verify_url = verify_url
        self.local_ttl = local_ttl
        self.redis_ttl = redis_ttl
        self.negative_ttl = negative_ttl
        self._local: dict[str, tuple[Principal | None, float]] = {}
        self._revoked: dict[str, float] = {}  # tombstones: key prefix -> monotonic time of revocation
        self._inflight: dict[str, asyncio.Future[Principal | None]] = {}
        self._store = redis.register_script(_STORE)
        self.identity_calls = 0

    async def authenticate(self, presented: str) -> Principal:
        parsed = apikeys.parse(presented)
        if parsed is None:
            raise ApiKeyInvalid("malformed API key")
        key = cache_key(parsed.prefix, parsed.secret_hash, parsed.env)
        entry = self._local.get(key)
        if entry is not None and entry[1] > time.monotonic():
            principal = entry[0]
        else:
            principal = await self._lookup(key, parsed)
        if principal is None:
            raise ApiKeyInvalid()
        if principal.expires_at is not None and principal.expires_at <= time.time():
            raise ApiKeyInvalid("API key expired")
        return principal

    async def _lookup(self, key: str, parsed: apikeys.PresentedKey) -> Principal | None:
        waiting = self._inflight.get(key)
        if waiting is not None:
            return await asyncio.shield(waiting)
        future: asyncio.Future[Principal | None] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            principal = await self._fetch(key, parsed)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: nobody else may be waiting
            raise
        finally:
            self._inflight.pop(key, None)
        if parsed.prefix in self._revoked:
            principal = None
        self._remember(key, principal)
        future.set_result(principal)
        return principal

    def _remember(self, key: str, principal: Principal | None) -> None:
        if len(self._local) >= CACHE_MAX:
            self._local.pop(next(iter(self._local)))
        ttl = self.local_ttl if principal is not None else self.negative_ttl
        self._local[key] = (principal, time.monotonic() + ttl)

    async def _fetch(self, key: str, parsed: apikeys.PresentedKey) -> Principal | None:
        try:
            raw = await self._redis.get(f"gw:apikey:{key}")
        except RedisError as exc:
            log.warning("API key cache read failed, asking identity: %s", exc)
            raw = None
        if raw is not None:
            return _principal(_decode(raw))
        verification = await self._ask_identity(parsed)
        if verification is None:
            return None
        try:
            await self._store(
                keys=(f"gw:apikey:{key}", f"gw:apikey-revoked:{parsed.prefix}"),
                args=(_encode(verification), self.redis_ttl),
            )
        except RedisError as exc:
            log.warning("API key cache write failed: %s", exc)
        return _principal(verification)

    async def _ask_identity(self, parsed: apikeys.PresentedKey) -> KeyVerification | None:
        self.identity_calls += 1
        assertion = self._signer.sign(Caller(kind="service", aud="identity", exp=time.time() + 30))
        body = {"env": parsed.env, "prefix": parsed.prefix, "secret_hash": parsed.secret_hash}
        try:
            async with self._http.post(
                self.verify_url,
                json=body,
                headers={HEADER: assertion},
                timeout=aiohttp.ClientTimeout(total=5),
            ) as resp:
                data = await resp.read()
                status = resp.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning("API key verification at identity failed: %s", exc)
            raise IdentityUnavailable() from None
        if status == 200:
            try:
                return _decode(data)
            except msgspec.DecodeError:
                log.error("identity answered an unreadable API key verification")
                raise IdentityUnavailable() from None
        if status in (401, 404):
            return None
        log.warning("API key verification at identity answered %d", status)
        raise IdentityUnavailable()

    async def revoke(self, prefix: str, secret_hash: str) -> None:
        """Called for every `identity.api_key.revoked` event this instance reads."""
        now = time.monotonic()
        self._revoked[prefix] = now
        if len(self._revoked) > 10_000:
            horizon = now - self.redis_ttl * 4
            self._revoked = {k: t for k, t in self._revoked.items() if t > horizon}
        if secret_hash:
            doomed = [cache_key(prefix, secret_hash, env) for env in apikeys.ENVS]
        else:  # an event without the hash: find the key's entries by prefix (rare, so a scan is fine)
            doomed = [k for k in self._local if k.startswith(prefix + ":")]
            async for found in self._redis.scan_iter(f"gw:apikey:{prefix}:*"):
                doomed.append(found.decode()[len("gw:apikey:") :])
        for key in doomed:
            self._local[key] = (None, now + self.redis_ttl * 2)
        pipe = self._redis.pipeline(transaction=False)
        pipe.set(f"gw:apikey-revoked:{prefix}", "1", ex=self.redis_ttl * 2)
        for key in doomed:
            pipe.delete(f"gw:apikey:{key}")
        await pipe.execute()
