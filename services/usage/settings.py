"""Settings of the usage service (env prefix USAGE_)."""

from __future__ import annotations

from shared.settings import CommonSettings, load_settings

PREFIX = "USAGE"


class UsageSettings(CommonSettings, frozen=True, kw_only=True):
    port: int = 8004


def get_settings() -> UsageSettings:
    return load_settings(UsageSettings, PREFIX)
