"""POSTs to tenant endpoints through a connection layer that refuses forbidden addresses.

httpcore's network backend is the one place every new connection passes: the host is resolved
there, every address is checked, and the socket goes to a checked address (no second lookup
that DNS rebinding could answer differently). TLS still verifies the certificate of the name.
No redirects are followed and the response body is read only up to a small limit.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpcore

from services.notifier.webhooks.ssrf import AddressBlocked, Policy, Resolver, resolve

USER_AGENT = "Catalytic-Webhooks/1.0"


@dataclass(frozen=True)
class Outcome:
    status_code: int | None
    body: str
    error: str | None
    duration_ms: float

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class _GuardedBackend(httpcore.AsyncNetworkBackend):
    def __init__(self, policy: Policy, resolver: Resolver) -> None:
        self._policy = policy
        self._resolver = resolver
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        name = host.strip("[]")
        try:
            addresses = await asyncio.wait_for(self._resolver(name, port), timeout)
        except OSError as exc:
            raise httpcore.ConnectError(f"cannot resolve {name}: {exc}") from exc
        self._policy.check(name, addresses)
        last: Exception | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    address, port, timeout=timeout, local_address=local_address, socket_options=socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        assert last is not None
        raise last

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise AddressBlocked("unix sockets are not webhook destinations")

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class WebhookClient:
    def __init__(
        self, policy: Policy, *, timeout: float, max_body: int, resolver: Resolver = resolve
    ) -> None:
        self.timeout = timeout
        self.max_body = max_body
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl.create_default_context(),
            max_connections=200,
            max_keepalive_connections=50,
            keepalive_expiry=30.0,
            network_backend=_GuardedBackend(policy, resolver),
        )

    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> Outcome:
        started = time.perf_counter()
        parts = urlsplit(url)
        sent = {
            "Host": parts.netloc.rpartition("@")[2],
            "User-Agent": USER_AGENT,
            "Content-Type": "application/json",
            "Content-Length": str(len(body)),
            **headers,
        }
        limit = {"connect": self.timeout, "read": self.timeout, "write": self.timeout, "pool": self.timeout}
        try:
            async with asyncio.timeout(self.timeout):
                async with self._pool.stream(
                    "POST", url, headers=list(sent.items()), content=body, extensions={"timeout": limit}
                ) as response:
                    text = await self._read_some(response)
                    return Outcome(response.status, text, None, _ms(started))
        except AddressBlocked as exc:
            return Outcome(None, "", f"blocked: {exc}", _ms(started))
        except (TimeoutError, httpcore.TimeoutException):
            return Outcome(None, "", f"timeout after {self.timeout:g}s", _ms(started))
        except (httpcore.NetworkError, httpcore.ProtocolError, httpcore.UnsupportedProtocol, OSError) as exc:
            return Outcome(None, "", f"{type(exc).__name__}: {exc}"[:500], _ms(started))

    async def _read_some(self, response: httpcore.Response) -> str:
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_stream():
            chunks.append(chunk)
            size += len(chunk)
            if size >= self.max_body:
                break
        text = b"".join(chunks)[: self.max_body].decode("utf-8", "replace")
        return text.replace("\x00", "\ufffd")  # Postgres text cannot hold NUL

    async def aclose(self) -> None:
        await self._pool.aclose()


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)
