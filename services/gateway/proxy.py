"""The request path: a lean ASGI handler (no framework routing or DI per request).

Per request: read the headers once, authenticate (cached), one Redis round trip for
revocation + limits + quota, sign the caller assertion, forward over a pooled keep-alive
connection, stream the answer back, queue one usage record.
"""

from __future__ import annotations

import logging
import math
import os
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp

from services.gateway import errors
from services.gateway.edge import SECURITY, Cors, Header, TrustedProxies, hsts
from services.gateway.exchange import Exchange, Incoming, read_headers
from services.gateway.keys import ApiKeyAuthenticator
from services.gateway.limiter import JTI_REVOKED, OK, QUOTA_EXCEEDED, RATE_LIMITED, Decision, Limiter
from services.gateway.listener import Listener
from services.gateway.principal import ANONYMOUS, Principal
from services.gateway.relay import read_body, relay, send_problem, stream_body
from services.gateway.routes import NO_IP_LIMIT, Route, RouteTable, is_public, is_safe
from services.gateway.settings import GatewaySettings
from services.gateway.tokens import JwtAuthenticator
from services.gateway.upstream import Pool, UpstreamError, UpstreamTimeout
from services.gateway.usage import UsageRecorder
from shared import context
from shared.auth.assertion import HEADER as ASSERTION_HEADER
from shared.auth.assertion import TTL_SECONDS, AssertionSigner, Caller
from shared.auth.errors import InsufficientScope, LoginRequired, TokenInvalid, TokenRevoked
from shared.errors import AppError
from shared.events import UsageRecord
from shared.metrics import HTTP_LATENCY, HTTP_REQUESTS

log = logging.getLogger("catalytic.gateway")
access = logging.getLogger("catalytic.access")

_VALID_ID = re.compile(rb"^[A-Za-z0-9._:-]{8,128}$")
_BUFFER_BODY_BELOW = 64 * 1024  # smaller request bodies are read whole; larger ones stream
_ASSERTION = ASSERTION_HEADER.encode()


@dataclass
class Runtime:
    """What the request path uses; built in the lifespan (see app.py)."""

    settings: GatewaySettings
    routes: RouteTable
    signer: AssertionSigner
    http: aiohttp.ClientSession  # control-plane calls (JWKS, key verification, OpenAPI)
    upstreams: Pool  # the request path
    jwt: JwtAuthenticator
    keys: ApiKeyAuthenticator
    limiter: Limiter
    usage: UsageRecorder
    listener: Listener


class Proxy:
    def __init__(self, settings: GatewaySettings) -> None:
        self.settings = settings
        self.rt: Runtime | None = None
        self.cors = Cors(settings.cors_allowed_origins, settings.cors_max_age)
        self.proxies = TrustedProxies(settings.trusted_proxies)
        self.hsts = hsts(settings.hsts_max_age)
        self.max_body = settings.max_body_bytes
        self._count: dict[tuple[str, int], Any] = {}
        self._latency = HTTP_LATENCY.labels("gateway")
        self._month = ("", 0.0)
        self._access_log = settings.access_log
        self._slow_ms = settings.access_log_slow_ms

    def month(self, now: float) -> str:
        label, until = self._month
        if now >= until:
            moment = datetime.fromtimestamp(now, UTC)
            label = f"{moment.year:04d}-{moment.month:02d}"
            until = math.floor(now) + 1.0
            self._month = (label, until)
        return label

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        started = time.perf_counter()
        rt = self.rt
        method: str = scope["method"]
        path: str = scope["path"]
        req = read_headers(scope["headers"])
        client = scope.get("client")
        peer: str = client[0] if client else "0.0.0.0"
        proxies = self.proxies
        ip = proxies.client_ip(peer, req.forwarded_for) if proxies else peer
        tls = scope.get("scheme") == "https" or (
            req.forwarded_proto == b"https" and bool(proxies) and proxies.trusted(peer)
        )
        rid_in = req.request_id
        rid = rid_in.decode() if rid_in is not None and _VALID_ID.match(rid_in) else os.urandom(16).hex()
        token = context.request_id.set(rid)
        headers: list[Header] = [*SECURITY, (b"x-request-id", rid.encode())]
        if tls:
            headers.append(self.hsts)
        origin = req.origin
        if origin is not None and self.cors.allows(origin):
            headers.extend(self.cors.response_headers(origin))
        ex = Exchange(headers)
        try:
            if rt is None:
                raise errors.Starting()
            if method == "OPTIONS" and origin is not None and req.acrm is not None:
                await self._preflight(ex, send, origin, req.acrh)
                return
            await self._proxy(rt, ex, scope, receive, send, req, ip, peer, tls, rid)
        except AppError as exc:
            await send_problem(ex, send, exc, path)
        except Exception:  # never a stack trace to the client
            log.exception("gateway failed on %s %s", method, path)
            await send_problem(ex, send, AppError("internal error"), path, status=500)
        finally:
            elapsed = time.perf_counter() - started
            self._finish(rt, ex, method, path, ip, rid, elapsed)
            context.request_id.reset(token)

    async def _preflight(self, ex: Exchange, send: Any, origin: bytes, requested: bytes | None) -> None:
        if not self.cors.allows(origin):
            raise errors.CorsOriginDenied(f"origin {origin.decode('latin-1')} may not call this API")
        base = [h for h in ex.headers if not h[0].startswith(b"access-control-") and h[0] != b"vary"]
        ex.status = 204
        ex.started = True
        await send(
            {
                "type": "http.response.start",
                "status": 204,
                "headers": [*base, *self.cors.preflight_headers(origin, requested)],
            }
        )
        await send({"type": "http.response.body", "body": b""})

    async def _proxy(
        self,
        rt: Runtime,
        ex: Exchange,
        scope: dict[str, Any],
        receive: Any,
        send: Any,
        req: Incoming,
        ip: str,
        peer: str,
        tls: bool,
        rid: str,
    ) -> None:
        method: str = scope["method"]
        path: str = scope["path"]
        auth, api_key, forward, forwarded_for = req.auth, req.api_key, req.forward, req.forwarded_for
        limiter = rt.limiter
        if not is_safe(path):
            await self._limit_ip(limiter, ex, ip)
            raise errors.BadPath("dot segments and empty segments are not accepted")
        route = rt.routes.match(path)
        if route is None:
            await self._limit_ip(limiter, ex, ip)
            raise errors.RouteNotFound(f"no service serves {path}")
        ex.route = route
        public = is_public(path)
        principal = ANONYMOUS
        if auth is not None or api_key is not None:
            try:
                principal = await self._authenticate(rt, auth, api_key)
            except AppError:
                if not public:
                    await self._limit_ip(limiter, ex, ip)
                    raise
        elif not public:
            await self._limit_ip(limiter, ex, ip)
            raise LoginRequired("send Authorization: Bearer <token or API key>, or X-API-Key")
        ex.principal = principal
        if route.scope is not None and not principal.has_scope(route.scope):
            raise InsufficientScope(f"this API key lacks the {route.scope!r} scope")
        plan = principal.plan
        tenant = principal.tenant
        if tenant is not None:
            if limiter.enabled or principal.kind == "user":
                now = time.time()
                decision = await limiter.tenant(
                    tenant,
                    plan or "free",
                    month=self.month(now),
                    metered=route.metered,
                    jti=principal.jti,
                    user_id=str(principal.user_id) if principal.user_id is not None else None,
                    iat=principal.iat,
                )
                self._apply(ex, decision, now)
                plan = decision.plan
            else:
                plan = rt.listener.plans.get(tenant, plan)
        elif path not in NO_IP_LIMIT:
            await self._limit_ip(limiter, ex, ip)
        caller = Caller(
            kind=principal.kind,
            aud=route.upstream,
            exp=time.time() + TTL_SECONDS,
            request_id=rid,
            tenant_id=principal.tenant_id,
            user_id=principal.user_id,
            api_key_id=principal.api_key_id,
            role=principal.role,
            plan=plan,
            scopes=principal.scopes,
            ip=ip,
            jti=principal.jti,
        )
        forward.append((_ASSERTION, rt.signer.sign(caller).encode()))
        forward.append((b"x-request-id", rid.encode()))
        chain = peer.encode()
        if forwarded_for is not None and self.proxies and self.proxies.trusted(peer):
            chain = forwarded_for + b", " + chain
        forward.append((b"x-forwarded-for", chain))
        forward.append((b"x-forwarded-proto", b"https" if tls else b"http"))
        if req.host is not None:
            forward.append((b"x-forwarded-host", req.host))
        await self._forward(rt, ex, scope, receive, send, method, route, req)

    async def _authenticate(self, rt: Runtime, auth: bytes | None, api_key: bytes | None) -> Principal:
        if auth is not None:
            scheme, _, credential = auth.partition(b" ")
            credential = credential.strip()
            if scheme.lower() != b"bearer" or not credential:
                raise TokenInvalid("the Authorization header must be 'Bearer <token or API key>'")
            text = credential.decode("latin-1")
            if text.startswith("cc_"):
                return await rt.keys.authenticate(text)
            return await rt.jwt.authenticate(text)
        assert api_key is not None
        return await rt.keys.authenticate(api_key.strip().decode("latin-1"))

    async def _limit_ip(self, limiter: Limiter, ex: Exchange, ip: str) -> None:
        if limiter.enabled:
            now = time.time()
            self._apply(ex, await limiter.ip(ip), now)

    def _apply(self, ex: Exchange, d: Decision, now: float) -> None:
        status = d.status
        if status == OK:
            if d.limit:
                self._rate_headers(ex, d.limit, d.remaining, d.reset_ms, now)
            if d.quota_limit:
                ex.metered = True
                remaining = max(0, d.quota_limit - d.quota_used)
                ex.headers.append((b"x-quota-limit", b"%d" % d.quota_limit))
                ex.headers.append((b"x-quota-remaining", b"%d" % remaining))
            return
        if status == RATE_LIMITED:
            retry = self._rate_headers(ex, d.limit, 0, d.reset_ms, now)
            raise errors.RateLimitExceeded(
                f"the limit of {d.limit} requests per minute is reached; retry in {retry} s",
                headers={"Retry-After": str(retry)},
            )
        if status == QUOTA_EXCEEDED:
            self._rate_headers(ex, d.limit, d.remaining, d.reset_ms, now)
            ex.headers.append((b"x-quota-limit", b"%d" % d.quota_limit))
            ex.headers.append((b"x-quota-remaining", b"0"))
            retry = _seconds_to_next_month(now)
            raise errors.QuotaExceeded(
                f"the {d.plan} plan includes {d.quota_limit} calls a month; upgrade or wait for next month",
                headers={"Retry-After": str(retry)},
            )
        if status == JTI_REVOKED:
            raise TokenRevoked("this access token was revoked (logout)")
        raise TokenRevoked("the sessions of this user were revoked; sign in again")

    @staticmethod
    def _rate_headers(ex: Exchange, limit: int, remaining: int, reset_ms: int, now: float) -> int:
        reset = max(1, math.ceil(reset_ms / 1000))
        limit_b, remaining_b, reset_b = b"%d" % limit, b"%d" % max(0, remaining), b"%d" % reset
        ex.headers += [
            (b"ratelimit-limit", limit_b),
            (b"ratelimit-remaining", remaining_b),
            (b"ratelimit-reset", reset_b),
            (b"x-ratelimit-limit", limit_b),
            (b"x-ratelimit-remaining", remaining_b),
            (b"x-ratelimit-reset", b"%d" % (int(now) + reset)),
        ]
        return reset

    async def _forward(
        self,
        rt: Runtime,
        ex: Exchange,
        scope: dict[str, Any],
        receive: Any,
        send: Any,
        method: str,
        route: Route,
        req: Incoming,
    ) -> None:
        forward, content_length, chunked = req.forward, req.content_length, req.chunked
        raw_path: bytes = scope.get("raw_path") or scope["path"].encode()
        if route.strip_prefix:
            raw_path = raw_path[len(route.prefix) :] or b"/"
            if not raw_path.startswith(b"/"):
                raw_path = b"/" + raw_path
        query: bytes = scope.get("query_string", b"")
        target = route.base_path + raw_path + (b"?" + query if query else b"")
        size = -1
        if content_length is not None:
            try:
                size = int(content_length)
            except ValueError:
                raise AppError("Content-Length is not a number") from None
            if size > self.max_body:
                raise errors.PayloadTooLarge(f"bodies are limited to {self.max_body} bytes")
        body: Any = None
        streamed = False
        too_large: list[bool] = []
        if size > 0 and size <= _BUFFER_BODY_BELOW and not chunked:
            body = await read_body(receive, ex, self.max_body)
        elif size > 0 or chunked:
            if not chunked:
                forward.append((b"content-length", content_length))  # type: ignore[arg-type]
            body = stream_body(receive, ex, self.max_body, too_large)
            streamed = True
        head = b"".join(
            [
                b"%s %s HTTP/1.1\r\nhost: %s\r\n" % (method.encode(), target, route.host_header),
                *[b"%s: %s\r\n" % pair for pair in forward],
            ]
        )
        try:
            response = await rt.upstreams.request(
                route.host,
                route.port,
                head,
                body,
                read_timeout=route.timeout,
                tls=route.tls,
                head_only=method == "HEAD",
                chunked=streamed and chunked,
            )
        except UpstreamTimeout:
            raise errors.UpstreamTimeout(
                f"{route.upstream} did not answer within {route.timeout:g} s"
            ) from None
        except (UpstreamError, OSError) as exc:
            if too_large:
                raise errors.PayloadTooLarge(f"bodies are limited to {self.max_body} bytes") from None
            log.warning("upstream %s unreachable: %s", route.upstream, exc)
            raise errors.UpstreamUnavailable(f"{route.upstream} is not answering") from None
        try:
            await relay(ex, send, method, response)
        finally:
            response.release()

    def _finish(
        self, rt: Runtime | None, ex: Exchange, method: str, path: str, ip: str, rid: str, elapsed: float
    ) -> None:
        status = ex.status or 500
        key = (method, status)
        counter = self._count.get(key)
        if counter is None:
            counter = self._count[key] = HTTP_REQUESTS.labels("gateway", method, str(status))
        counter.inc()
        self._latency.observe(elapsed)
        latency_ms = round(elapsed * 1000, 3)
        mode = self._access_log
        if (
            mode == "all" or (mode == "errors" and (status >= 400 or latency_ms >= self._slow_ms))
        ) and access.isEnabledFor(logging.INFO):
            access.info("%s %s %d", method, path, status, extra={"status": status, "duration_ms": latency_ms})
        if rt is None:
            return
        p = ex.principal
        route = ex.route
        rt.usage.add(
            UsageRecord(
                request_id=rid,
                at=datetime.now(UTC),
                tenant_id=p.tenant_id,
                user_id=p.user_id,
                api_key_id=p.api_key_id,
                method=method,
                route=route.prefix if route is not None else "",
                status=status,
                latency_ms=latency_ms,
                bytes_in=ex.bytes_in,
                bytes_out=ex.bytes_out,
                ip=ip,
                metered=ex.metered,
            )
        )


def _seconds_to_next_month(now: float) -> int:
    moment = datetime.fromtimestamp(now, UTC)
    year, month = (moment.year + 1, 1) if moment.month == 12 else (moment.year, moment.month + 1)
    return max(1, int(datetime(year, month, 1, tzinfo=UTC).timestamp() - now))
