"""Checks that talk to the peers: PostgreSQL, Redis, migrations, SMTP, Sentry, the health endpoint."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from urllib.parse import urlsplit, urlunsplit

import aiosmtplib
import asyncpg
import httpx
from redis.asyncio import Redis

from shared.migrations import pending
from shared.ops.preflight.env import service_settings, var
from shared.ops.preflight.result import Options, Result, bad, ok, skip
from shared.platform import SERVICES
from shared.settings import SettingsError

TIMEOUT = 5.0
MIN_POSTGRES = 14
MIN_REDIS = 6


def _where(url: str) -> str:
    """host:port/db of a URL, never its credentials."""
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port or ''}{parts.path}"


async def check_postgres(opts: Options) -> Result:
    name = "postgres"
    admin = var(opts.env, "DATABASE_URL")
    if not admin:
        return bad(name, "DATABASE_URL is not set", "set DATABASE_URL to the role that owns the schemas")
    urls = {"DATABASE_URL": admin}
    urls |= {
        f"{s.upper()}_DATABASE_URL": u
        for s, info in SERVICES.items()
        if info.schema and (u := var(opts.env, f"{s.upper()}_DATABASE_URL"))
    }
    version = 0
    for label, url in urls.items():
        try:
            conn = await asyncpg.connect(url, timeout=TIMEOUT)
        except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
            return bad(
                name,
                f"{label} ({_where(url)}): {type(exc).__name__}: {exc}",
                f"check the host, role and password in {label}; the role must exist and may log in",
            )
        try:
            version = version or int(await conn.fetchval("SHOW server_version_num"))
        finally:
            await conn.close()
    if version < MIN_POSTGRES * 10_000:
        return bad(name, f"server version {version} is too old", f"upgrade to PostgreSQL {MIN_POSTGRES}+")
    return ok(name, f"PostgreSQL {version // 10_000} at {_where(admin)}; {len(urls)} role(s) log in")


async def check_migrations(opts: Options) -> Result:
    name = "migrations"
    admin = var(opts.env, "DATABASE_URL")
    if not admin:
        return bad(name, "DATABASE_URL is not set", "set DATABASE_URL")
    waiting: list[str] = []
    try:
        for info in SERVICES.values():
            if info.schema:
                waiting += [f"{info.schema}: {m}" for m in await pending(admin, info.schema, info.migrations)]
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        return bad(name, f"cannot read the applied migrations: {exc}", "fix the postgres check first")
    if waiting:
        shown = ", ".join(waiting[:5]) + (f" and {len(waiting) - 5} more" if len(waiting) > 5 else "")
        return bad(name, f"{len(waiting)} pending: {shown}", "run `catalytic migrate` (as in docs/deploy.md)")
    return ok(name, "no pending migration in any schema")


def _redis_url(opts: Options) -> str:
    try:
        return service_settings(opts.env, "usage").redis_url
    except SettingsError:
        return var(opts.env, "REDIS_URL")


async def check_redis(opts: Options) -> Result:
    name = "redis"
    url = _redis_url(opts)
    if not url:
        return bad(name, "REDIS_URL is not set", "set REDIS_URL (or REDIS_HOST/REDIS_PORT/REDIS_PASSWORD)")
    parts = urlsplit(url)
    client = Redis.from_url(url, socket_timeout=TIMEOUT, socket_connect_timeout=TIMEOUT)
    try:
        info = await client.info("server")
    except Exception as exc:  # noqa: BLE001 - redis-py wraps socket and auth errors in its own types
        return bad(name, f"{_where(url)}: {type(exc).__name__}: {exc}", "check REDIS_URL's host and password")
    finally:
        await client.aclose()
    version = str(info.get("redis_version", "0"))
    if int(version.split(".", maxsplit=1)[0]) < MIN_REDIS:
        return bad(name, f"Redis {version} is too old", f"upgrade to Redis {MIN_REDIS}.2 or later")
    netloc = parts.netloc.rsplit("@", 1)[-1]
    anonymous = Redis.from_url(
        urlunsplit((parts.scheme, netloc, parts.path, "", "")),
        socket_timeout=TIMEOUT,
        socket_connect_timeout=TIMEOUT,
    )
    try:
        open_to_all = bool(await anonymous.ping())
    except Exception:  # noqa: BLE001 - NOAUTH (or any refusal) is what we want to see
        open_to_all = False
    finally:
        await anonymous.aclose()
    if open_to_all:
        return bad(
            name,
            f"Redis {version} at {_where(url)} answers without a password",
            "set `requirepass` in redis.conf and put the password in REDIS_URL (redis://:PASSWORD@host)",
        )
    return ok(name, f"Redis {version} at {_where(url)}, password required")


async def check_smtp(opts: Options) -> Result:
    name = "smtp"
    try:
        s = service_settings(opts.env, "notifier")
    except SettingsError as exc:
        return bad(name, f"notifier settings are invalid: {exc.problems[0]}", "fix the settings check first")
    from services.notifier.settings import NotifierSettings

    assert isinstance(s, NotifierSettings)
    client = aiosmtplib.SMTP(
        hostname=s.smtp_host,
        port=s.smtp_port,
        use_tls=s.smtp_security == "tls",
        start_tls={"auto": None, "starttls": True, "tls": False, "none": False}[s.smtp_security],
        validate_certs=s.smtp_validate_certs,
        timeout=min(s.smtp_timeout, TIMEOUT),
    )
    where = f"{s.smtp_host}:{s.smtp_port} ({s.smtp_security})"
    try:
        await client.connect()
        if s.smtp_username:
            await client.login(s.smtp_username, s.smtp_password)
        await client.quit()
    except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
        return bad(
            name, f"{where}: {type(exc).__name__}: {exc}", "check SMTP_HOST/PORT/SECURITY and the login"
        )
    detail = f"{where}: " + (f"logged in as {s.smtp_username}" if s.smtp_username else "connected (no login)")
    if opts.send_test_mail:
        from services.notifier.cli import send_test

        code = await asyncio.to_thread(send_test, opts.send_test_mail, s)
        if code != 0:
            return bad(
                name, f"{detail}; the test mail was refused", "see the message above; check EMAIL_FROM"
            )
        detail += f"; test mail sent to {opts.send_test_mail}"
    return ok(name, detail)


async def check_sentry(opts: Options) -> Result:
    name = "sentry"
    dsn = var(opts.env, "SENTRY_DSN")
    if not dsn:
        return skip(name, "not configured (SENTRY_DSN is empty)")
    parts = urlsplit(dsn)
    project = parts.path.strip("/").rsplit("/", 1)[-1]
    if parts.scheme not in ("http", "https") or not parts.username or not project or not parts.hostname:
        return bad(name, "SENTRY_DSN is not a DSN", "copy the DSN from Sentry: https://KEY@HOST/PROJECT_ID")
    base = f"{parts.scheme}://{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    prefix = parts.path.strip("/").rsplit("/", 1)[0] if "/" in parts.path.strip("/") else ""
    url = f"{base}/{prefix + '/' if prefix else ''}api/{project}/envelope/"
    event_id = uuid.uuid4().hex
    header = {"event_id": event_id, "dsn": dsn, "sent_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    event = {"event_id": event_id, "level": "info", "message": "catalytic preflight", "platform": "python"}
    body = "\n".join(json.dumps(x) for x in (header, {"type": "event"}, event)) + "\n"
    auth = f"Sentry sentry_version=7, sentry_key={parts.username}, sentry_client=catalytic-preflight/1"
    try:
        async with httpx.AsyncClient(timeout=TIMEOUT) as client:
            response = await client.post(
                url,
                content=body,
                headers={"Content-Type": "application/x-sentry-envelope", "X-Sentry-Auth": auth},
            )
    except httpx.HTTPError as exc:
        return bad(name, f"{base}: {type(exc).__name__}: {exc}", "check SENTRY_DSN and outbound HTTPS")
    if response.status_code != 200:
        return bad(name, f"{base} answered {response.status_code}", "check SENTRY_DSN (key and project id)")
    return ok(name, f"test event {event_id} accepted by {base}")


async def check_health(opts: Options) -> Result:
    name = "health"
    if not opts.health_url:
        return skip(name, "no --health-url given")
    base = opts.health_url.rstrip("/")
    try:
        async with httpx.AsyncClient(timeout=TIMEOUT) as client:
            for path in ("/health", "/ready"):
                response = await client.get(base + path)
                if response.status_code != 200:
                    return bad(
                        name,
                        f"{base}{path} answered {response.status_code}",
                        "`systemctl status catalytic.target`; `journalctl -u 'catalytic-*'`",
                    )
    except httpx.HTTPError as exc:
        return bad(
            name,
            f"{base}: {type(exc).__name__}: {exc}",
            "start the platform: systemctl start catalytic.target",
        )
    return ok(name, f"{base}/health and /ready answer 200")
