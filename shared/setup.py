"""Database preparation shared by `catalytic dev`, `catalytic migrate`, tests and benchmarks."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

import asyncpg

from shared.auth import keys
from shared.migrations import migrate, provision_role
from shared.platform import SERVICES, ServiceInfo

log = logging.getLogger("catalytic.setup")


def local_keys_env(directory: Path, env: str) -> dict[str, str]:
    """Generate a key set once (dev/test) and point the `*_FILE` settings at it."""
    if not (directory / "secrets.key").exists():
        keys.generate(env, directory, force=True)
    return {
        "JWT_PRIVATE_KEY_FILE": str(directory / "jwt_private.pem"),
        "JWT_PUBLIC_KEY_FILE": str(directory / "jwt_public.pem"),
        "ASSERTION_PRIVATE_KEY_FILE": str(directory / "assertion_private.pem"),
        "ASSERTION_PUBLIC_KEY_FILE": str(directory / "assertion_public.pem"),
        "SECRETS_KEY_FILE": str(directory / "secrets.key"),
    }


def role_url(admin_url: str, role: str, password: str) -> str:
    parts = urlsplit(admin_url)
    host = parts.hostname or "127.0.0.1"
    netloc = f"{role}:{password}@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def dev_password(info: ServiceInfo) -> str:
    return f"dev-insecure-{info.schema}"


async def provision_dev_roles(admin_url: str) -> dict[str, str]:
    """Create one login role per service (dev/test only); return `<SVC>_DATABASE_URL` settings."""
    database = urlsplit(admin_url).path.lstrip("/") or "postgres"
    env: dict[str, str] = {}
    for info in SERVICES.values():
        if info.schema and info.runtime_role:
            await provision_role(admin_url, info.runtime_role, dev_password(info), database)
            env[f"{info.name.upper()}_DATABASE_URL"] = role_url(
                admin_url, info.runtime_role, dev_password(info)
            )
    return env


def role_passwords_from_env(env: Mapping[str, str]) -> dict[str, str]:
    """Login role -> password, from each service's `<SERVICE>_DATABASE_URL` (or `…_FILE`).

    A deployment configures each password once, in the URL the service connects with; services
    without such a URL are left out."""
    found: dict[str, str] = {}
    for info in SERVICES.values():
        if not info.schema or not info.runtime_role:
            continue
        var = f"{info.name.upper()}_DATABASE_URL"
        url = env.get(var) or (Path(env[f"{var}_FILE"]).read_text().strip() if env.get(f"{var}_FILE") else "")
        if not url:
            continue
        parts = urlsplit(url)
        if parts.username != info.runtime_role or not parts.password:
            raise ValueError(f"{var} must name the role {info.runtime_role} and its password")
        found[info.runtime_role] = unquote(parts.password)
    return found


async def provision_roles_from_env(admin_url: str, env: Mapping[str, str]) -> list[str]:
    """Create or update the login roles named by `role_passwords_from_env` (compose's `migrate`)."""
    database = urlsplit(admin_url).path.lstrip("/") or "postgres"
    roles = role_passwords_from_env(env)
    for role, password in roles.items():
        await provision_role(admin_url, role, password, database)
    return list(roles)


async def migrate_all(admin_url: str, only: str | None = None) -> dict[str, list[str]]:
    applied: dict[str, list[str]] = {}
    for info in SERVICES.values():
        if info.schema is None or (only and info.name != only):
            continue
        role = info.runtime_role if await _role_exists(admin_url, info.runtime_role) else None
        if role is None:
            log.warning(
                "role %s does not exist: %s runs with the migrating role", info.runtime_role, info.name
            )
        applied[info.name] = await migrate(admin_url, info.schema, info.migrations, runtime_role=role)
    return applied


async def _role_exists(admin_url: str, role: str | None) -> bool:
    if role is None:
        return False
    conn = await asyncpg.connect(admin_url)
    try:
        return bool(await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", role))
    finally:
        await conn.close()
