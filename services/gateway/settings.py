"""Settings of the gateway service (env prefix GATEWAY_)."""

from __future__ import annotations

from shared.settings import CommonSettings, load_settings

PREFIX = "GATEWAY"


class GatewaySettings(CommonSettings, frozen=True, kw_only=True):
    port: int = 8000


def get_settings() -> GatewaySettings:
    return load_settings(GatewaySettings, PREFIX)
