"""The event bus on Redis Streams: transactional outbox, relay, consumers with an inbox."""

from __future__ import annotations

from shared.bus.consumer import Consumer, ConsumerConfig
from shared.bus.outbox import OutboxRelay, add_event, add_events
from shared.bus.registry import BatchHandler, Handler, Registry

__all__ = [
    "BatchHandler",
    "Consumer",
    "ConsumerConfig",
    "Handler",
    "OutboxRelay",
    "Registry",
    "add_event",
    "add_events",
]
