"""Settings of the gateway service (env prefix GATEWAY_)."""

from __future__ import annotations

import ipaddress
from typing import Literal

import msgspec

from services.gateway.routes import UpstreamConfig, parse_upstreams
from shared.settings import CommonSettings, load_settings

PREFIX = "GATEWAY"


class GatewaySettings(CommonSettings, frozen=True, kw_only=True):
    port: int = 8000
    # Where the platform's own services answer (each also read from the unprefixed IDENTITY_URL, …).
    identity_url: str = "http://127.0.0.1:8001"
    billing_url: str = "http://127.0.0.1:8002"
    notifier_url: str = "http://127.0.0.1:8003"
    usage_url: str = "http://127.0.0.1:8004"
    # Product upstreams: a JSON list of {name, prefix, url, scope?, strip_prefix?, timeout?, metered?}.
    upstreams: str = ""
    # Signs the caller assertion sent upstream (Ed25519 PEM; ASSERTION_PRIVATE_KEY_FILE in deployments).
    assertion_private_key: str = ""
    jwt_issuer: str = "catalytic-identity"
    jwt_audience: str = "catalytic-api"
    jwks_url: str = ""  # default: <identity_url>/.well-known/jwks.json
    jwks_min_refetch_seconds: float = 10.0  # an unknown `kid` refetches the JWKS at most this often
    jwks_refresh_seconds: float = 300.0
    api_key_verify_url: str = ""  # default: <identity_url>/internal/api-keys/verify
    api_key_local_ttl_seconds: float = 30.0
    api_key_redis_ttl_seconds: int = 60
    api_key_negative_ttl_seconds: float = 5.0
    rate_limits: bool = True
    anonymous_per_minute: int = 120  # per client IP on public routes
    trusted_proxies: tuple[str, ...] = ()  # CIDRs whose X-Forwarded-For / -Proto are believed
    max_body_bytes: int = 10 * 1024 * 1024
    upstream_timeout_seconds: float = 30.0
    upstream_connect_timeout_seconds: float = 5.0
    upstream_pool_size: int = 512
    upstream_keepalive_seconds: float = 4.0  # below uvicorn's 5 s, so we never reuse a closing socket
    usage_flush_ms: int = 50
    usage_batch_max: int = 500
    usage_buffer_max: int = 200_000  # records kept while Redis is away; beyond that they are dropped
    cors_max_age: int = 600
    hsts_max_age: int = 31_536_000
    # Every request is in the usage stream already; the log gets refusals, failures and slow ones.
    access_log: Literal["all", "errors", "off"] = "errors"
    access_log_slow_ms: float = 1000.0

    def identity_jwks_url(self) -> str:
        return self.jwks_url or f"{self.identity_url.rstrip('/')}/.well-known/jwks.json"

    def identity_verify_url(self) -> str:
        return self.api_key_verify_url or f"{self.identity_url.rstrip('/')}/internal/api-keys/verify"

    def product_upstreams(self) -> list[UpstreamConfig]:
        return parse_upstreams(self.upstreams)

    def problems(self) -> list[str]:
        found = super().problems()
        if not self.assertion_private_key:
            found.append(
                "GATEWAY_ASSERTION_PRIVATE_KEY (or ASSERTION_PRIVATE_KEY, or a _FILE variant) is required"
            )
        try:
            self.product_upstreams()
        except (ValueError, msgspec.ValidationError, msgspec.DecodeError) as exc:
            found.append(f"GATEWAY_UPSTREAMS is invalid: {exc}")
        for cidr in self.trusted_proxies:
            try:
                ipaddress.ip_network(cidr, strict=False)
            except ValueError:
                found.append(f"GATEWAY_TRUSTED_PROXIES: {cidr!r} is not an address or network")
        if self.anonymous_per_minute < 1:
            found.append("GATEWAY_ANONYMOUS_PER_MINUTE must be at least 1")
        return found


def get_settings() -> GatewaySettings:
    return load_settings(GatewaySettings, PREFIX)
