"""Composition root of the gateway: the proxy (lean ASGI) beside a small Litestar app of its own pages."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import aiohttp
from litestar import Litestar

from services.gateway.api import ROUTES
from services.gateway.edge import SECURITY
from services.gateway.keys import ApiKeyAuthenticator
from services.gateway.limiter import Limiter
from services.gateway.listener import Listener
from services.gateway.openapi import OpenApi, sources_of
from services.gateway.proxy import Proxy, Runtime
from services.gateway.redispipe import RedisPipe
from services.gateway.routes import build_table
from services.gateway.settings import GatewaySettings, get_settings
from services.gateway.tokens import JwtAuthenticator
from services.gateway.upstream import Pool
from services.gateway.usage import UsageRecorder
from shared.auth.assertion import AssertionSigner
from shared.http import Resources, create_app
from shared.platform import service
from shared.worker import WorkerSpec

INFO = service("gateway")
# The gateway's own pages; every other path is proxied.
LOCAL_PATHS = frozenset({"/health", "/ready", "/metrics", "/openapi.json", "/docs"})


class Gateway:
    """The ASGI application uvicorn serves."""

    def __init__(self, site: Litestar, proxy: Proxy) -> None:
        self.site = site
        self.proxy = proxy

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            if scope["path"] not in LOCAL_PATHS:
                await self.proxy(scope, receive, send)
                return

            async def send_secured(message: dict[str, Any]) -> None:
                if message["type"] == "http.response.start":
                    message["headers"] = [*message.get("headers", ()), *SECURITY]
                await send(message)

            await self.site(scope, receive, send_secured)  # type: ignore[arg-type]
            return
        await self.site(scope, receive, send)  # type: ignore[arg-type] # lifespan; websockets are refused


class Lifecycle:
    """Starts what the proxy needs once Redis is there, and stops it in order."""

    def __init__(self, settings: GatewaySettings, proxy: Proxy, state: Any) -> None:
        self.settings = settings
        self.proxy = proxy
        self.state = state
        self.stop = asyncio.Event()
        self.tasks: list[asyncio.Task[None]] = []
        self.http: aiohttp.ClientSession | None = None
        self.pipe: RedisPipe | None = None
        self.pool: Pool | None = None

    async def start(self, resources: Resources) -> None:
        s = self.settings
        connector = aiohttp.TCPConnector(
            limit=s.upstream_pool_size,
            limit_per_host=0,
            keepalive_timeout=s.upstream_keepalive_seconds,
            ttl_dns_cache=300,
        )
        http = aiohttp.ClientSession(
            connector=connector,
            auto_decompress=False,  # bodies pass through as the upstream encoded them
            cookie_jar=aiohttp.DummyCookieJar(),  # one client for every caller: never keep cookies
            skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding"),
        )
        self.http = http
        signer = AssertionSigner(s.assertion_private_key)
        services = {n: getattr(s, f"{n}_url") for n in ("identity", "billing", "notifier", "usage")}
        routes = build_table(services, s.product_upstreams(), s.upstream_timeout_seconds)
        jwt = JwtAuthenticator(
            http,
            jwks_url=s.identity_jwks_url(),
            issuer=s.jwt_issuer,
            audience=s.jwt_audience,
            min_refetch_seconds=s.jwks_min_refetch_seconds,
        )
        keys = ApiKeyAuthenticator(
            resources.redis,
            http,
            signer,
            verify_url=s.identity_verify_url(),
            local_ttl=s.api_key_local_ttl_seconds,
            redis_ttl=s.api_key_redis_ttl_seconds,
            negative_ttl=s.api_key_negative_ttl_seconds,
        )
        self.pipe = RedisPipe(s.redis_url)
        limiter = Limiter(self.pipe, enabled=s.rate_limits, anonymous_per_minute=s.anonymous_per_minute)
        usage = UsageRecorder(
            resources.redis,
            flush_ms=s.usage_flush_ms,
            batch_max=s.usage_batch_max,
            buffer_max=s.usage_buffer_max,
        )
        listener = Listener(resources.redis, keys.revoke)
        openapi = OpenApi(http, sources_of(routes.routes))
        self.state.openapi = openapi
        self.tasks = [
            asyncio.create_task(listener.run(self.stop), name="gateway-listener"),
            asyncio.create_task(usage.run(self.stop), name="gateway-usage"),
            asyncio.create_task(jwt.keep_fresh(s.jwks_refresh_seconds, self.stop), name="gateway-jwks"),
            asyncio.create_task(openapi.run(self.stop), name="gateway-openapi"),
        ]
        # Serve only once revocations are being read, so none published from now on is missed.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(listener.ready.wait(), 5)
        self.pool = Pool(
            connect_timeout=s.upstream_connect_timeout_seconds, keepalive=s.upstream_keepalive_seconds
        )
        self.proxy.rt = Runtime(s, routes, signer, http, self.pool, jwt, keys, limiter, usage, listener)

    async def shutdown(self, resources: Resources) -> None:
        self.proxy.rt = None
        self.stop.set()
        for task in self.tasks:
            try:
                await asyncio.wait_for(task, 5)
            except (TimeoutError, asyncio.CancelledError):
                task.cancel()
        if self.http is not None:
            await self.http.close()
        if self.pipe is not None:
            await self.pipe.close()
        if self.pool is not None:
            self.pool.close()


def app() -> Gateway:
    settings = get_settings()
    proxy = Proxy(settings)
    holder: dict[str, Lifecycle] = {}

    async def startup(resources: Resources) -> None:
        await holder["life"].start(resources)

    async def shutdown(resources: Resources) -> None:
        await holder["life"].shutdown(resources)

    site = create_app(
        service=INFO.name,
        settings=settings,
        route_handlers=ROUTES,
        startup=startup,
        shutdown=shutdown,
        behind_gateway=False,
        openapi=False,
    )
    holder["life"] = Lifecycle(settings, proxy, site.state)
    return Gateway(site, proxy)


def worker() -> WorkerSpec | None:
    return None  # the gateway keeps no Postgres state; its stream readers run in-process
