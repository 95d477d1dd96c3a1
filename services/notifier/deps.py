"""What consumers, jobs and controllers of the notifier share: settings and the secrets box."""

from __future__ import annotations

from dataclasses import dataclass

from services.notifier.settings import NotifierSettings
from shared.crypto import SecretBox
from shared.settings import SettingsError


@dataclass(frozen=True)
class Deps:
    settings: NotifierSettings
    box: SecretBox

    @classmethod
    def from_settings(cls, settings: NotifierSettings) -> Deps:
        """The API and the worker need the secrets key (the `email test` command does not)."""
        if not settings.secrets_key:
            raise SettingsError("notifier", ["SECRETS_KEY (or SECRETS_KEY_FILE) is required"])
        try:
            box = SecretBox(settings.secrets_key)
        except ValueError as exc:
            raise SettingsError("notifier", [f"SECRETS_KEY is not a valid key: {exc}"]) from None
        return cls(settings, box)
