"""Sentry, initialised only when SENTRY_DSN is set."""

from __future__ import annotations

import sentry_sdk

from shared.settings import CommonSettings


def init_sentry(service: str, settings: CommonSettings) -> bool:
    if not settings.sentry_dsn:
        return False
    sentry_sdk.init(
        dsn=settings.sentry_dsn,
        environment=settings.app_env,
        server_name=service,
        traces_sample_rate=settings.sentry_traces_sample_rate,
        send_default_pii=False,  # never ship emails, tokens or IPs to a third party
    )
    return True
