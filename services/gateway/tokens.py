"""Access tokens verified locally with identity's JWKS (cached; refetched on an unknown `kid`).

A token string that verified once maps to its Principal until it expires: the signature of
the same bytes cannot change, and revocation is checked in Redis on every request anyway.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any
from uuid import UUID

import aiohttp

from services.gateway.errors import IdentityUnavailable
from services.gateway.principal import Principal
from shared.auth.errors import TokenExpired, TokenInvalid
from shared.auth.tokens import TokenVerifier
from shared.errors import AppError

log = logging.getLogger("catalytic.gateway.jwks")

CACHE_MAX = 50_000
LEEWAY = 5  # seconds, as TokenVerifier


class JwtAuthenticator:
    def __init__(
        self,
        http: aiohttp.ClientSession,
        *,
        jwks_url: str,
        issuer: str,
        audience: str,
        min_refetch_seconds: float,
    ) -> None:
        self._http = http
        self.jwks_url = jwks_url
        self.issuer = issuer
        self.audience = audience
        self.min_refetch = min_refetch_seconds
        self._verifier: TokenVerifier | None = None
        self._kids: frozenset[str] = frozenset()
        self._fetched_at = float("-inf")
        self._lock = asyncio.Lock()
        self._cache: dict[str, Principal] = {}
        # Tokens that failed for good (bad signature, expired, wrong audience…): parsing one costs
        # milliseconds in PyJWT, so a client repeating it must not make us pay again.
        self._refused: dict[str, AppError] = {}
        self.fetches = 0

    @property
    def loaded(self) -> bool:
        return self._verifier is not None

    async def authenticate(self, token: str) -> Principal:
        found = self._cache.get(token)
        if found is not None:
            if found.expires_at is not None and found.expires_at + LEEWAY < time.time():
                self._cache.pop(token, None)
                raise TokenExpired()
            return found
        refused = self._refused.get(token)
        if refused is not None:
            raise refused
        try:
            kid = TokenVerifier.kid_of(token)  # `none`, HS256 and other algorithms stop here
        except AppError as exc:
            self._refuse(token, exc)
            raise
        verifier = self._verifier
        if verifier is None or not verifier.knows(kid):
            verifier = await self._refetch_for(kid)
        if not verifier.knows(kid):
            raise TokenInvalid("unknown signing key")  # not remembered: a refetch may bring it
        try:
            claims = verifier.verify(token)
        except AppError as exc:
            self._refuse(token, exc)
            raise
        try:
            principal = Principal(
                kind="user",
                tenant=claims.tenant_id,
                tenant_id=UUID(claims.tenant_id),
                user_id=UUID(claims.sub),
                role=claims.role,
                plan=claims.plan,
                jti=claims.jti,
                iat=claims.iat,
                expires_at=float(claims.exp),
            )
        except ValueError:
            error = TokenInvalid("subject or tenant is not an id")
            self._refuse(token, error)
            raise error from None
        if len(self._cache) >= CACHE_MAX:
            self._cache.pop(next(iter(self._cache)))
        self._cache[token] = principal
        return principal

    def _refuse(self, token: str, error: AppError) -> None:
        if len(self._refused) >= CACHE_MAX:
            self._refused.pop(next(iter(self._refused)))
        self._refused[token] = error

    async def _refetch_for(self, kid: str) -> TokenVerifier:
        async with self._lock:
            verifier = self._verifier
            if verifier is not None and verifier.knows(kid):
                return verifier
            # Unknown kids refetch at most every min_refetch seconds, so a flood of forged kids cannot
            # turn into a flood on identity. Until the first load (identity starting after us) ten
            # tries a second at most: the first requests after start must not wait a whole second.
            wait = self.min_refetch if verifier is not None else 0.1
            if time.monotonic() - self._fetched_at >= wait:
                await self.refresh()
            if self._verifier is None:
                raise IdentityUnavailable("the token signing keys could not be loaded yet")
            return self._verifier

    async def refresh(self) -> bool:
        self._fetched_at = time.monotonic()
        self.fetches += 1
        try:
            async with self._http.get(self.jwks_url, timeout=aiohttp.ClientTimeout(total=5)) as resp:
                if resp.status != 200:
                    log.warning("JWKS fetch from %s answered %d", self.jwks_url, resp.status)
                    return False
                jwks: dict[str, Any] = await resp.json(content_type=None)
            verifier = TokenVerifier(jwks, issuer=self.issuer, audience=self.audience)
        except (aiohttp.ClientError, TimeoutError, ValueError, TypeError, KeyError) as exc:
            log.warning("JWKS fetch from %s failed: %s", self.jwks_url, exc)
            return False
        kids = frozenset(str(k.get("kid")) for k in jwks.get("keys", ()) if isinstance(k, dict))
        if kids != self._kids:
            self._cache.clear()  # a key left the set: tokens signed with it must stop passing
            self._refused.clear()
            self._kids = kids
        self._verifier = verifier
        return True

    async def keep_fresh(self, every: float, stop: asyncio.Event) -> None:
        """Load at startup (identity may come up later) and refresh periodically for rotation."""
        delay = 0.0
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), delay)
                return
            except TimeoutError:
                pass
            async with self._lock:
                ok = await self.refresh()
            delay = every if ok or self._verifier is not None else 1.0
