"""Typed settings read once from the environment.

Each service has one frozen Struct. A field `database_url` of a service with prefix
`IDENTITY` is read from `IDENTITY_DATABASE_URL`, then from the shared `DATABASE_URL`;
`<NAME>_FILE` variants read the value from a file (Docker/Kubernetes secrets).
Every missing or invalid variable is reported in one error.
"""

from __future__ import annotations

import os
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, Self, TypeVar
from urllib.parse import quote, urlsplit, urlunsplit

import msgspec

T = TypeVar("T", bound="CommonSettings")

Environment = Literal["development", "test", "production"]
_DEV_MARKERS = ("dev-insecure", "changeme", "development")  # key files start with their env name


class SettingsError(Exception):
    def __init__(self, service: str, problems: list[str]) -> None:
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"invalid settings for {service}:\n{lines}")


class CommonSettings(msgspec.Struct, frozen=True, kw_only=True):
    """Settings every service reads. Subclass per service and add fields."""

    app_env: Environment = "development"
    debug: bool = False
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "text"] = "json"
    database_url: str = ""
    redis_url: str = "redis://127.0.0.1:6379/0"
    # Alternative to REDIS_URL (managed Redis hands these out): used when REDIS_URL is not set.
    redis_host: str = ""
    redis_port: int = 6379
    redis_db: int = 0
    redis_password: str = ""
    sentry_dsn: str = ""
    sentry_traces_sample_rate: float = 0.0
    host: str = "127.0.0.1"
    port: int = 8000
    cors_allowed_origins: tuple[str, ...] = ()
    secrets_key: str = ""
    # Public half of the gateway's caller-assertion key: upstreams verify every request with it.
    assertion_public_key: str = ""

    @property
    def is_production(self) -> bool:
        return self.app_env == "production"

    def with_redis_parts(self, url_given: bool) -> Self:
        """Fold REDIS_HOST/PORT/DB/PASSWORD into redis_url (REDIS_PASSWORD also fills a URL without one)."""
        url = self.redis_url
        if self.redis_host and not url_given:
            url = f"redis://{self.redis_host}:{self.redis_port}/{self.redis_db}"
        parts = urlsplit(url)
        if self.redis_password and not parts.password:
            host = parts.netloc.rsplit("@", 1)[-1]
            netloc = f"{parts.username or ''}:{quote(self.redis_password, safe='')}@{host}"
            url = urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
        return self if url == self.redis_url else msgspec.structs.replace(self, redis_url=url)

    def problems(self) -> list[str]:
        """Cross-field checks; production refuses unsafe choices."""
        found: list[str] = []
        if self.is_production:
            if self.debug:
                found.append("DEBUG must be false when APP_ENV=production")
            if "*" in self.cors_allowed_origins:
                found.append("CORS_ALLOWED_ORIGINS must not contain '*' when APP_ENV=production")
            if self.secrets_key and self.secrets_key.split(":", 1)[0] in (*_DEV_MARKERS, "test"):
                found.append("SECRETS_KEY is a development key; generate one with `catalytic keys generate`")
        return found


def _lookup(env: Mapping[str, str], prefix: str, name: str) -> tuple[str, str] | None:
    """Return (variable name, raw value) for the first variant that is set."""
    upper = name.upper()
    for var in (f"{prefix}_{upper}", upper):
        if var in env:
            return var, env[var]
        file_var = f"{var}_FILE"
        if file_var in env:
            path = Path(env[file_var])
            try:
                return file_var, path.read_text().strip()
            except OSError as exc:
                raise ValueError(f"{file_var}: cannot read {path}: {exc.strerror}") from None
    return None


def _sequence_type(tp: Any) -> bool:
    origin = typing.get_origin(tp)
    if origin in (list, tuple, set, frozenset):
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_sequence_type(a) for a in typing.get_args(tp))
    return False


def _coerce(raw: str, tp: Any) -> Any:
    if _sequence_type(tp):
        items: list[str] = [part.strip() for part in raw.split(",") if part.strip()]
        return msgspec.convert(items, tp, strict=False)
    return msgspec.convert(raw, tp, strict=False)


def load_settings(cls: type[T], prefix: str, env: Mapping[str, str] | None = None) -> T:
    """Build `cls` from the environment or raise SettingsError naming every bad variable."""
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    problems: list[str] = []
    for field in msgspec.structs.fields(cls):
        try:
            found = _lookup(env, prefix, field.name)
        except ValueError as exc:
            problems.append(str(exc))
            continue
        if found is None:
            if field.required:
                problems.append(f"{prefix}_{field.name.upper()} (or {field.name.upper()}) is required")
            continue
        var, raw = found
        try:
            values[field.name] = _coerce(raw, field.type)
        except msgspec.ValidationError as exc:
            shown = "<secret>" if "secret" in var.lower() or "password" in var.lower() else repr(raw)
            problems.append(f"{var}={shown} is invalid: {exc}")
    if problems:
        raise SettingsError(prefix.lower(), problems)
    settings = cls(**values).with_redis_parts(url_given="redis_url" in values)
    problems = settings.problems()
    if problems:
        raise SettingsError(prefix.lower(), problems)
    return settings
