from __future__ import annotations

from pathlib import Path

import pytest

from shared.settings import CommonSettings, SettingsError, load_settings


class DemoSettings(CommonSettings, frozen=True, kw_only=True):
    api_token: str
    workers: int = 2


def test_every_bad_variable_is_named_in_one_error() -> None:
    env = {"DEMO_WORKERS": "many", "DEBUG": "perhaps", "LOG_LEVEL": "LOUD"}
    with pytest.raises(SettingsError) as err:
        load_settings(DemoSettings, "DEMO", env)
    text = str(err.value)
    assert "DEMO_WORKERS='many' is invalid" in text
    assert "DEBUG='perhaps' is invalid" in text
    assert "LOG_LEVEL='LOUD' is invalid" in text
    assert "DEMO_API_TOKEN (or API_TOKEN) is required" in text
    assert len(err.value.problems) == 4


def test_prefixed_beats_shared_and_types_are_converted() -> None:
    env = {
        "API_TOKEN": "shared",
        "DEMO_API_TOKEN": "mine",
        "WORKERS": "7",
        "CORS_ALLOWED_ORIGINS": "https://a.example, https://b.example",
    }
    settings = load_settings(DemoSettings, "DEMO", env)
    assert settings.api_token == "mine"
    assert settings.workers == 7
    assert settings.cors_allowed_origins == ("https://a.example", "https://b.example")


def test_file_variant_reads_secret_from_file(tmp_path: Path) -> None:
    secret = tmp_path / "token"
    secret.write_text("s3cr3t\n")
    settings = load_settings(DemoSettings, "DEMO", {"DEMO_API_TOKEN_FILE": str(secret)})
    assert settings.api_token == "s3cr3t"


def test_unreadable_secret_file_is_reported(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="API_TOKEN_FILE: cannot read"):
        load_settings(DemoSettings, "DEMO", {"API_TOKEN_FILE": str(tmp_path / "missing")})


def test_secret_values_are_not_echoed() -> None:
    with pytest.raises(SettingsError) as err:
        load_settings(DemoSettings, "DEMO", {"API_TOKEN": "x", "DEMO_WORKERS": "1", "PORT": "no"})
    assert "PORT='no'" in str(err.value)

    class Secretive(CommonSettings, frozen=True, kw_only=True):
        smtp_password: int = 0

    with pytest.raises(SettingsError) as err2:
        load_settings(Secretive, "X", {"SMTP_PASSWORD": "hunter2"})
    assert "hunter2" not in str(err2.value)
    assert "<secret>" in str(err2.value)


def test_production_refuses_debug_wildcard_cors_and_dev_keys() -> None:
    env = {
        "API_TOKEN": "t",
        "APP_ENV": "production",
        "DEBUG": "true",
        "CORS_ALLOWED_ORIGINS": "*",
        "SECRETS_KEY": "development:c2VjcmV0",
    }
    with pytest.raises(SettingsError) as err:
        load_settings(DemoSettings, "DEMO", env)
    assert len(err.value.problems) == 3
    safe = {
        **env,
        "DEBUG": "false",
        "CORS_ALLOWED_ORIGINS": "https://app.example",
        "SECRETS_KEY": "production:Zk9x",
    }
    assert load_settings(DemoSettings, "DEMO", safe).is_production
