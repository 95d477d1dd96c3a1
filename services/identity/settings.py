"""Settings of the identity service (env prefix IDENTITY_)."""

from __future__ import annotations

from shared.settings import CommonSettings, load_settings

PREFIX = "IDENTITY"


class IdentitySettings(CommonSettings, frozen=True, kw_only=True):
    port: int = 8001


def get_settings() -> IdentitySettings:
    return load_settings(IdentitySettings, PREFIX)
