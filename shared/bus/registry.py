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
# A batch handler gets every fresh event of its types in a consumer batch, in stream order, so it
# can write all their effects with one statement (executemany, unnest).
BatchHandler = Callable[[Connection, list[Event[Any]], D], Awaitable[None]]


class Registry(Generic[D]):
    def __init__(self) -> None:
        self._by_type: dict[str, list[Handler[D]]] = {}
        self._any: list[Handler[D]] = []
        self._batch_by_type: dict[str, list[BatchHandler[D]]] = {}
        self._any_batch: list[BatchHandler[D]] = []

    def on(self, *payloads: type[Payload]) -> Callable[[Handler[D]], Handler[D]]:
        def add(fn: Handler[D]) -> Handler[D]:
            for payload in payloads:
                self._by_type.setdefault(payload.TYPE, []).append(fn)
            return fn

        return add

    def on_any(self, fn: Handler[D]) -> Handler[D]:
        self._any.append(fn)
        return fn

    def on_batch(self, *payloads: type[Payload]) -> Callable[[BatchHandler[D]], BatchHandler[D]]:
        """Register a handler called once per batch with the events of these types (never empty)."""

        def add(fn: BatchHandler[D]) -> BatchHandler[D]:
            for payload in payloads:
                self._batch_by_type.setdefault(payload.TYPE, []).append(fn)
            return fn

        return add

    def on_any_batch(self, fn: BatchHandler[D]) -> BatchHandler[D]:
        self._any_batch.append(fn)
        return fn

    def wants(self, event_type: str) -> bool:
        if self._any or self._any_batch:
            return True
        return event_type in self._by_type or event_type in self._batch_by_type

    async def dispatch(self, tx: Connection, event: Event[Any], deps: D) -> None:
        await self.dispatch_many(tx, [event], deps)

    async def dispatch_many(self, tx: Connection, batch: list[Event[Any]], deps: D) -> None:
        """Per-event handlers event by event, then each batch handler once with its events."""
        for event in batch:
            for fn in self._by_type.get(event.type, ()):
                await fn(tx, event, deps)
            for fn in self._any:
                await fn(tx, event, deps)
        for any_fn in self._any_batch:
            await any_fn(tx, batch, deps)
        if not self._batch_by_type:
            return
        grouped: dict[BatchHandler[D], list[Event[Any]]] = {}
        for event in batch:
            for batch_fn in self._batch_by_type.get(event.type, ()):
                grouped.setdefault(batch_fn, []).append(event)
        for batch_fn, selected in grouped.items():
            await batch_fn(tx, selected, deps)
