"""Event handlers: plain async functions registered by payload type, no Redis code."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

from shared.db import Connection
from shared.events import Event, Payload

D = TypeVar("D")
P = TypeVar("P", bound=Payload)

# A handler runs inside the consumer's transaction: `tx` is that connection, `deps` what the
# service's composition root gives its consumers (settings, clients).
Handler = Callable[[Connection, Event[Any], D], Awaitable[None]]


class Registry(Generic[D]):
    def __init__(self) -> None:
        self._by_type: dict[str, list[Handler[D]]] = {}
        self._any: list[Handler[D]] = []

    def on(self, *payloads: type[Payload]) -> Callable[[Handler[D]], Handler[D]]:
        def add(fn: Handler[D]) -> Handler[D]:
            for payload in payloads:
                self._by_type.setdefault(payload.TYPE, []).append(fn)
            return fn

        return add

    def on_any(self, fn: Handler[D]) -> Handler[D]:
        self._any.append(fn)
        return fn

    def wants(self, event_type: str) -> bool:
        return bool(self._any) or event_type in self._by_type

    async def dispatch(self, tx: Connection, event: Event[Any], deps: D) -> None:
        for fn in self._by_type.get(event.type, ()):
            await fn(tx, event, deps)
        for fn in self._any:
            await fn(tx, event, deps)
