"""Edge policy: client address behind trusted proxies, CORS, security headers (precomputed bytes)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

Header = tuple[bytes, bytes]

# Headers the gateway owns on every response; upstream copies are dropped.
OWNED: frozenset[bytes] = frozenset(
    {
        b"x-content-type-options",
        b"x-frame-options",
        b"referrer-policy",
        b"strict-transport-security",
        b"access-control-allow-origin",
        b"access-control-expose-headers",
        b"access-control-allow-credentials",
        b"ratelimit-limit",
        b"ratelimit-remaining",
        b"ratelimit-reset",
        b"x-ratelimit-limit",
        b"x-ratelimit-remaining",
        b"x-ratelimit-reset",
        b"x-request-id",
    }
)
HOP_BY_HOP: frozenset[bytes] = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"content-length",  # set again from what is actually sent
    }
)
# Upstream response headers not passed on: hop-by-hop, ours, and the server's own date and banner
# (the gateway's server sets the date once).
RESPONSE_DROP: frozenset[bytes] = HOP_BY_HOP | OWNED | {b"date", b"server"}
SECURITY: tuple[Header, ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
)
EXPOSED = (
    b"x-request-id, retry-after, ratelimit-limit, ratelimit-remaining, ratelimit-reset, "
    b"x-ratelimit-limit, x-ratelimit-remaining, x-ratelimit-reset, x-quota-limit, x-quota-remaining"
)
ALLOWED_METHODS = b"GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"
DEFAULT_ALLOWED_HEADERS = b"authorization, content-type, x-api-key, x-request-id, idempotency-key"


class TrustedProxies:
    """Decides, once per peer address, whether its X-Forwarded-* headers are believed."""

    def __init__(self, cidrs: Iterable[str]) -> None:
        self._networks = [ipaddress.ip_network(c, strict=False) for c in cidrs]
        self._memo: dict[str, bool] = {}

    def __bool__(self) -> bool:
        return bool(self._networks)

    def trusted(self, address: str) -> bool:
        known = self._memo.get(address)
        if known is None:
            try:
                ip = ipaddress.ip_address(address)
                known = any(ip in net for net in self._networks)
            except ValueError:
                known = False
            if len(self._memo) > 10_000:
                self._memo.clear()
            self._memo[address] = known
        return known

    def client_ip(self, peer: str, forwarded_for: bytes | None) -> str:
        """The rightmost address not ours: proxies append, so anything left of that is client-made."""
        if forwarded_for is None or not self.trusted(peer):
            return peer
        hops = [h.strip() for h in forwarded_for.decode("latin-1").split(",") if h.strip()]
        for hop in reversed(hops):
            if not self.trusted(hop):
                return hop
        return hops[0] if hops else peer


class Cors:
    def __init__(self, origins: Iterable[str], max_age: int) -> None:
        listed = tuple(origins)
        self.any = "*" in listed  # refused in production by the settings
        self._allowed = frozenset(o.rstrip("/").encode() for o in listed if o != "*")
        self._max_age = str(max_age).encode()

    def allows(self, origin: bytes) -> bool:
        return self.any or origin in self._allowed

    def response_headers(self, origin: bytes) -> list[Header]:
        return [
            (b"access-control-allow-origin", b"*" if self.any else origin),
            (b"vary", b"Origin"),
            (b"access-control-expose-headers", EXPOSED),
        ]

    def preflight_headers(self, origin: bytes, requested_headers: bytes | None) -> list[Header]:
        return [
            (b"access-control-allow-origin", b"*" if self.any else origin),
            (b"vary", b"Origin"),
            (b"access-control-allow-methods", ALLOWED_METHODS),
            (b"access-control-allow-headers", requested_headers or DEFAULT_ALLOWED_HEADERS),
            (b"access-control-max-age", self._max_age),
        ]


def hsts(max_age: int) -> Header:
    return (b"strict-transport-security", f"max-age={max_age}; includeSubDomains".encode())
