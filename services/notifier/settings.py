"""Settings of the notifier service (env prefix NOTIFIER_)."""

from __future__ import annotations

from shared.settings import CommonSettings, load_settings

PREFIX = "NOTIFIER"


class NotifierSettings(CommonSettings, frozen=True, kw_only=True):
    port: int = 8003


def get_settings() -> NotifierSettings:
    return load_settings(NotifierSettings, PREFIX)
