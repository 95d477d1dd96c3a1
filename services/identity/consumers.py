"""Event handlers of the identity service: billing's plan changes, usage's key last-used times."""

from __future__ import annotations

from typing import Any

from services.identity.service import plans
from shared.bus import Registry
from shared.db import Connection
from shared.events import ApiKeysUsed, Event, SubscriptionActivated, SubscriptionCanceled, SubscriptionChanged

handlers = Registry[Any]()


@handlers.on(SubscriptionActivated, SubscriptionChanged, SubscriptionCanceled)
async def subscription(tx: Connection, event: Event[Any], deps: Any) -> None:
    await plans.apply_subscription(tx, event)


@handlers.on(ApiKeysUsed)
async def api_keys_used(tx: Connection, event: Event[ApiKeysUsed], deps: Any) -> None:
    await plans.record_key_use(tx, event.data)
