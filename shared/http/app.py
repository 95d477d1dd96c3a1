"""The Litestar app factory every service uses."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import msgspec
from litestar import Litestar, Response, get
from litestar.config.cors import CORSConfig
from litestar.datastructures import State
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import ScalarRenderPlugin
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from redis.asyncio import Redis

from shared import logs, observability
from shared.auth.assertion import AssertionVerifier
from shared.db import Pool, create_pool
from shared.http import litestar_fix
from shared.http.middleware import request_context
from shared.http.openapi import document_problems
from shared.http.problems import EXCEPTION_HANDLERS
from shared.settings import CommonSettings, SettingsError

ReadyCheck = Callable[[], Awaitable[None]]


@dataclass
class Resources:
    """What a service's process holds open: built in the lifespan, closed at shutdown."""

    settings: CommonSettings
    redis: Redis
    pool: Pool | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class ReadyStatus(msgspec.Struct):
    status: str
    checks: dict[str, dict[str, Any]]


def redis_client(url: str) -> Redis:
    # The socket timeout must exceed any blocking read (consumers block for 2 s).
    client: Redis = Redis.from_url(
        url, socket_timeout=10, socket_connect_timeout=5, health_check_interval=30, max_connections=200
    )
    # Keep XAUTOCLAIM's raw reply: redis-py's parser drops the ids of deleted entries (6.2).
    client.set_response_callback("XAUTOCLAIM", lambda response, **_: response)
    return client


@get("/health", include_in_schema=False, sync_to_thread=False)
def health() -> dict[str, str]:
    return {"status": "ok"}


@get("/metrics", include_in_schema=False, sync_to_thread=False)
def metrics() -> Response[bytes]:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


@get("/ready", include_in_schema=False)
async def ready(state: State) -> Response[ReadyStatus]:
    resources: Resources = state.resources
    checks: dict[str, ReadyCheck] = {"redis": resources.redis.ping}
    if resources.pool is not None:
        pool = resources.pool
        checks["postgres"] = lambda: pool.fetchval("SELECT 1")
    checks.update(state.get("ready_checks", {}))
    results = await asyncio.gather(*(_timed(fn) for fn in checks.values()))
    report = dict(zip(checks, results, strict=True))
    ok = all(r["ok"] for r in report.values())
    return Response(ReadyStatus("ok" if ok else "unavailable", report), status_code=200 if ok else 503)


async def _timed(check: ReadyCheck) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        await asyncio.wait_for(check(), 2.0)
    except Exception as exc:  # noqa: BLE001 - readiness reports any failure
        return {"ok": False, "error": type(exc).__name__, "latency_ms": _ms(started)}
    return {"ok": True, "latency_ms": _ms(started)}


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)


def create_app(
    *,
    service: str,
    settings: CommonSettings,
    route_handlers: Sequence[Any],
    schema: str | None = None,
    database_url: str | None = None,
    startup: Callable[[Resources], Awaitable[None]] | None = None,
    shutdown: Callable[[Resources], Awaitable[None]] | None = None,
    dependencies: dict[str, Provide] | None = None,
    max_body_bytes: int = 1_048_576,
    cors: bool = False,
    openapi: bool = True,
    behind_gateway: bool = True,
) -> Litestar:
    """A Litestar app with problem+json errors, request ids, JSON logs, health/ready/metrics.

    `behind_gateway` services verify the gateway's caller assertion on every route that asks
    for `caller`/`member`/`admin` (shared.http.caller); the public key is required at startup.
    """
    logs.configure(service, settings.log_level, settings.log_format)
    observability.init_sentry(service, settings)
    litestar_fix.install()
    state: dict[str, Any] = {}
    if behind_gateway:
        if not settings.assertion_public_key:
            raise SettingsError(service, ["ASSERTION_PUBLIC_KEY (or ASSERTION_PUBLIC_KEY_FILE) is required"])
        state["assertion_verifier"] = AssertionVerifier(settings.assertion_public_key, service)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        document_problems(app)
        resources = Resources(settings=settings, redis=redis_client(settings.redis_url))
        if schema is not None:
            resources.pool = await create_pool(
                database_url or settings.database_url, schema=schema, application_name=service
            )
        app.state.resources = resources
        try:
            if startup is not None:
                await startup(resources)
            yield
        finally:
            if shutdown is not None:
                await shutdown(resources)
            if resources.pool is not None:
                await resources.pool.close()
            await resources.redis.aclose()

    deps = {"resources": Provide(_resources, sync_to_thread=False), **(dependencies or {})}
    return Litestar(
        route_handlers=[health, ready, metrics, *route_handlers],
        lifespan=[lifespan],
        middleware=[request_context(service)],
        exception_handlers=EXCEPTION_HANDLERS,
        dependencies=deps,
        request_max_body_size=max_body_bytes,
        cors_config=CORSConfig(allow_origins=list(settings.cors_allowed_origins)) if cors else None,
        openapi_config=OpenAPIConfig(
            title=f"catalytic {service}", version="1.0.0", render_plugins=[ScalarRenderPlugin()]
        )
        if openapi
        else None,
        debug=settings.debug,
        logging_config=None,
        state=State(state),  # ours (shared.logs) is already in place: JSON, one handler
    )


def _resources(state: State) -> Resources:
    resources: Resources = state.resources
    return resources
