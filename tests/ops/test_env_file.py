"""The production env template covers every setting, and `catalytic env check` judges a file."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from shared.ops import envfile
from shared.ops.preflight.env import CLI_VARIABLES, service_settings, settings_variables
from tests.ops.envs import TEMPLATE, production_env, run_cli, write_env


def _template_names() -> set[str]:
    names = set()
    for line in TEMPLATE.read_text().splitlines():
        match = re.match(r"^#?\s*([A-Z][A-Z0-9_]*)=", line)
        if match:
            names.add(match.group(1).removesuffix("_FILE"))
    return names


def test_template_names_every_setting_and_nothing_else() -> None:
    names = _template_names()
    fields = settings_variables()
    missing = [key for key, variants in fields.items() if not variants & names]
    assert missing == [], f"settings without a line in .env.production.template: {missing}"
    known = set().union(*fields.values()) | CLI_VARIABLES
    unknown = sorted(names - known)
    assert unknown == [], f"template variables no settings read: {unknown}"


def test_parser_reads_quotes_comments_and_export() -> None:
    text = (
        '# comment\n\nexport A=1\nB=\'two # not a comment\'\nC="x\\"y" # note\nD=plain # note\nE=\n'
        'F="Name <a@b.c>"\n'
    )
    assert envfile.parse(text) == {
        "A": "1",
        "B": "two # not a comment",
        "C": 'x"y',
        "D": "plain",
        "E": "",
        "F": "Name <a@b.c>",
    }
    with pytest.raises(envfile.EnvFileError, match="2: expected KEY=VALUE"):
        envfile.parse("A=1\nnot a line\n")
    with pytest.raises(envfile.EnvFileError, match="unterminated"):
        envfile.parse("A='open\n")


def test_redis_parts_build_the_url() -> None:
    env = {"REDIS_HOST": "cache.internal", "REDIS_PORT": "6380", "REDIS_PASSWORD": "p@ss word"}
    assert service_settings(env, "usage").redis_url == "redis://:p%40ss%20word@cache.internal:6380/0"
    env = {"REDIS_URL": "redis://10.0.0.5:6379/2", "REDIS_PASSWORD": "s3cret"}
    assert service_settings(env, "usage").redis_url == "redis://:s3cret@10.0.0.5:6379/2"
    env = {"REDIS_URL": "rediss://app@cache.example:6380/0", "REDIS_PASSWORD": "pw"}
    assert service_settings(env, "usage").redis_url == "rediss://app:pw@cache.example:6380/0"
    env = {"REDIS_URL": "redis://:inline@h:1/0", "REDIS_PASSWORD": "other"}
    assert service_settings(env, "usage").redis_url == "redis://:inline@h:1/0"
    assert service_settings({}, "usage").redis_url == "redis://127.0.0.1:6379/0"


@pytest.fixture(scope="module")
def keys_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("keys")


def test_filled_in_template_passes(keys_dir: Path, tmp_path: Path) -> None:
    path = write_env(tmp_path / "catalytic.env", production_env(keys_dir))
    code, out = run_cli("env", "check", str(path))
    assert code == 0, out
    assert "6 checks: none failed" in out


def test_template_as_shipped_is_refused(tmp_path: Path) -> None:
    code, out = run_cli("env", "check", str(TEMPLATE))
    assert code == 1
    assert "/etc/catalytic/keys/jwt_private.pem is missing" in out


@pytest.mark.parametrize(
    ("overrides", "mode", "problem", "fix"),
    [
        ({"DEBUG": "true"}, 0o600, "DEBUG is on", "DEBUG=false"),
        ({"APP_ENV": "development"}, 0o600, "APP_ENV is 'development'", "set APP_ENV=production"),
        ({"LOG_LEVEL": "<unset>"}, 0o600, "LOG_LEVEL is not set", "LOG_LEVEL=INFO"),
        ({"CORS_ALLOWED_ORIGINS": "https://a.example,*"}, 0o600, "allows every origin", "list the exact"),
        ({"STRIPE_API_KEY": "sk_test_123"}, 0o600, "not a live secret key", "live secret key"),
        ({"STRIPE_WEBHOOK_SECRET": "<unset>"}, 0o600, "no Stripe webhook secret", "whsec_"),
        ({"STRIPE_WEBHOOK_SECRET": "secret"}, 0o600, "does not start with whsec_", "signing secret"),
        ({}, 0o644, "is 644", "chmod 600"),
        ({"EMAIL_FROM": "nobody"}, 0o600, "is not an email address", "set or correct each variable"),
        (
            {"STRIPE_WEBHOOK_SECRT": "whsec_x"},
            0o600,
            "no service reads STRIPE_WEBHOOK_SECRT",
            "correct the spelling",
        ),
    ],
)
def test_each_unsafe_value_fails_with_its_fix(
    keys_dir: Path, tmp_path: Path, overrides: dict[str, str], mode: int, problem: str, fix: str
) -> None:
    path = write_env(tmp_path / "catalytic.env", production_env(keys_dir, **overrides), mode)
    code, out = run_cli("env", "check", str(path))
    assert code == 1
    assert problem in out
    assert f"fix: {fix}" in out or fix in out.split("fix:", 1)[-1], out


def test_key_file_readable_by_others_fails(keys_dir: Path, tmp_path: Path) -> None:
    loose = tmp_path / "secrets.key"
    loose.write_bytes((keys_dir / "secrets.key").read_bytes())
    loose.chmod(0o644)
    path = write_env(tmp_path / "catalytic.env", production_env(keys_dir, SECRETS_KEY_FILE=str(loose)))
    code, out = run_cli("env", "check", str(path))
    assert code == 1
    assert f"fix: chmod 600 {loose}" in out
