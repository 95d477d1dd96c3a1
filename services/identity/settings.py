"""Settings of the identity service (env prefix IDENTITY_; JWT_* are shared with the gateway)."""

from __future__ import annotations

import os
from typing import Literal

from shared.settings import CommonSettings, load_settings

PREFIX = "IDENTITY"

HashProfile = Literal["owasp", "test"]


class IdentitySettings(CommonSettings, frozen=True, kw_only=True):
    port: int = 8001
    # Access tokens: RS256 (or EdDSA) signed with JWT_PRIVATE_KEY(_FILE); keys being rotated out
    # stay published in the JWKS from JWT_PREVIOUS_PUBLIC_KEYS(_FILE) (concatenated PEM blocks).
    jwt_private_key: str = ""
    jwt_previous_public_keys: str = ""
    jwt_issuer: str = "catalytic-identity"
    jwt_audience: str = "catalytic-api"
    access_token_ttl_seconds: int = 900
    refresh_token_ttl_seconds: int = 7 * 86_400  # idle lifetime: each rotation extends it
    session_max_seconds: int = 30 * 86_400  # absolute lifetime of a refresh-token family
    password_reset_ttl_seconds: int = 3_600
    email_verification_ttl_seconds: int = 2 * 86_400
    invitation_ttl_seconds: int = 7 * 86_400
    password_reset_per_hour: int = 5  # per account; more requests are accepted and dropped
    # argon2id: "owasp" = m=19 MiB, t=2, p=1. "test" is cheap and refused in production.
    password_hash_profile: HashProfile = "owasp"  # noqa: S105 - a profile name
    password_hash_concurrency: int = 0  # 0 = one per CPU
    password_hash_queue: int = 64  # waiting hashes beyond this get 503 instead of piling up
    # Login throttling (see docs/identity.md): per (account, IP) exponential lock; per IP
    # across accounts; per account across IPs, capped and skipped for IPs it logged in from.
    login_free_attempts: int = 5
    login_lock_base_seconds: int = 1
    login_lock_max_seconds: int = 900
    login_failure_window_seconds: int = 3_600
    login_ip_max_failures: int = 100
    login_ip_window_seconds: int = 900
    login_account_max_failures: int = 20
    login_account_window_seconds: int = 900
    login_account_lock_max_seconds: int = 300
    login_known_ip_days: int = 30

    @property
    def hash_concurrency(self) -> int:
        return self.password_hash_concurrency or os.cpu_count() or 1

    def problems(self) -> list[str]:
        found = super().problems()
        if self.is_production and self.password_hash_profile != "owasp":  # noqa: S105
            found.append("IDENTITY_PASSWORD_HASH_PROFILE must be 'owasp' when APP_ENV=production")
        if self.access_token_ttl_seconds <= 0 or self.refresh_token_ttl_seconds <= 0:
            found.append("token lifetimes must be positive")
        if self.login_free_attempts < 1 or self.login_lock_max_seconds < self.login_lock_base_seconds:
            found.append("IDENTITY_LOGIN_FREE_ATTEMPTS must be >= 1 and the lock cap >= its base")
        return found


def get_settings() -> IdentitySettings:
    return load_settings(IdentitySettings, PREFIX)
