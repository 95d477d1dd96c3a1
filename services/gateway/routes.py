"""The route table: which upstream serves a path, what it requires, and which paths are public."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

import msgspec

_NAME = re.compile(r"^[a-z][a-z0-9-]{0,62}$")
_PREFIX = re.compile(r"^(/[A-Za-z0-9._~-]+)+$")

# Exactly the public paths of the platform; everything else needs a JWT or an API key.
PUBLIC_EXACT: frozenset[str] = frozenset(
    {"/billing/plans", "/.well-known/jwks.json", "/webhooks/stripe", "/health"}
)
PUBLIC_PREFIX = "/auth/"
# Public, but not limited per IP: Stripe retries on 429 and the signature is checked by billing.
NO_IP_LIMIT: frozenset[str] = frozenset({"/webhooks/stripe"})

# The platform's own services and the public prefixes each owns (paths are forwarded unchanged).
BUILTIN_PREFIXES: dict[str, tuple[str, ...]] = {
    "identity": ("/auth", "/me", "/tenant", "/users", "/api-keys", "/.well-known/jwks.json"),
    "billing": ("/billing", "/webhooks/stripe"),
    "notifier": ("/webhooks",),  # /webhooks/endpoints…; /webhooks/stripe is billing's (longer prefix)
    "usage": ("/usage", "/audit-logs"),
}


class UpstreamConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One product upstream from GATEWAY_UPSTREAMS."""

    name: str  # also the audience of the assertion it receives
    prefix: str
    url: str
    scope: str | None = None  # an API key must carry it (or "admin"); users act by role
    strip_prefix: bool = False
    timeout: float | None = None  # seconds; default GATEWAY_UPSTREAM_TIMEOUT_SECONDS
    metered: bool = True  # counts toward the tenant's monthly call quota


def parse_upstreams(raw: str) -> list[UpstreamConfig]:
    if not raw.strip():
        return []
    found = msgspec.json.decode(raw.encode(), type=list[UpstreamConfig])
    seen: set[str] = set()
    for up in found:
        if not _NAME.match(up.name):
            raise ValueError(f"upstream name {up.name!r} must be lowercase letters, digits and dashes")
        if not _PREFIX.match(up.prefix):
            raise ValueError(f"upstream {up.name}: prefix {up.prefix!r} must look like /name (no trailing /)")
        parts = urlsplit(up.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"upstream {up.name}: url {up.url!r} must be http(s)://host[:port]")
        if up.prefix in seen:
            raise ValueError(f"upstream prefix {up.prefix} is listed twice")
        if up.timeout is not None and up.timeout <= 0:
            raise ValueError(f"upstream {up.name}: timeout must be positive")
        seen.add(up.prefix)
    return found


@dataclass(frozen=True, slots=True)
class Route:
    upstream: str  # assertion audience and usage label
    prefix: str
    base_url: str  # scheme://host:port[/path] without a trailing slash
    scope: str | None
    strip_prefix: bool
    timeout: float
    metered: bool
    host: str = ""
    port: int = 0
    tls: bool = False
    base_path: bytes = b""  # prepended to the forwarded path
    host_header: bytes = b""

    @classmethod
    def make(
        cls,
        upstream: str,
        prefix: str,
        base_url: str,
        scope: str | None,
        strip_prefix: bool,
        timeout: float,
        metered: bool,
    ) -> Route:
        parts = urlsplit(base_url)
        tls = parts.scheme == "https"
        host = parts.hostname or "127.0.0.1"
        port = parts.port or (443 if tls else 80)
        return cls(
            upstream,
            prefix,
            base_url.rstrip("/"),
            scope,
            strip_prefix,
            timeout,
            metered,
            host,
            port,
            tls,
            parts.path.rstrip("/").encode(),
            parts.netloc.rpartition("@")[2].encode(),
        )


class RouteTable:
    """Longest-prefix match on whole path segments, in a handful of dict lookups."""

    def __init__(self, routes: list[Route]) -> None:
        self._by_prefix: dict[str, Route] = {}
        for route in routes:
            self._by_prefix[route.prefix] = route  # configured upstreams may override a built-in

    @property
    def routes(self) -> list[Route]:
        return list(self._by_prefix.values())

    def match(self, path: str) -> Route | None:
        table = self._by_prefix
        candidate = path
        while candidate:
            route = table.get(candidate)
            if route is not None:
                return route
            cut = candidate.rfind("/")
            if cut <= 0:
                return None
            candidate = candidate[:cut]
        return None


def build_table(
    service_urls: dict[str, str], upstreams: list[UpstreamConfig], default_timeout: float
) -> RouteTable:
    routes: list[Route] = []
    for name, prefixes in BUILTIN_PREFIXES.items():
        base = service_urls[name].rstrip("/")
        routes.extend(Route.make(name, p, base, None, False, default_timeout, False) for p in prefixes)
    for up in upstreams:
        routes.append(
            Route.make(
                up.name,
                up.prefix,
                up.url.rstrip("/"),
                up.scope,
                up.strip_prefix,
                up.timeout or default_timeout,
                up.metered,
            )
        )
    return RouteTable(routes)


def is_public(path: str) -> bool:
    return path in PUBLIC_EXACT or path.startswith(PUBLIC_PREFIX)


def is_safe(path: str) -> bool:
    """No dot segments or empty segments: `/auth/../internal` must not reach an unrouted path."""
    if not path.startswith("/") or "//" in path:
        return False
    return "/." not in path or not any(seg in (".", "..") for seg in path.split("/"))
