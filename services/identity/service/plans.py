"""The tenant's plan, kept from billing's subscription events; last-used times from usage."""

from __future__ import annotations

import logging
from typing import Any
from uuid import UUID

from services.identity.repository import keys, tenants
from services.identity.service.common import emit
from shared.db import Connection
from shared.events import SYSTEM, ApiKeysUsed, Event, SubscriptionCanceled, TenantPlanChanged
from shared.plans import DEFAULT_PLAN
from shared.plans import plan as plan_of

log = logging.getLogger("catalytic.identity.plans")

_ENDED = frozenset({"canceled", "incomplete_expired"})


async def apply_subscription(tx: Connection, event: Event[Any]) -> None:
    """Set the tenant's plan; an event older than the last one applied changes nothing."""
    if event.tenant_id is None:
        log.warning("%s %s has no tenant; ignored", event.type, event.id)
        return
    tenant = await tenants.lock(tx, event.tenant_id)
    if tenant is None:
        log.warning("%s %s names unknown tenant %s; ignored", event.type, event.id, event.tenant_id)
        return
    if tenant.plan_changed_at is not None and event.occurred_at < tenant.plan_changed_at:
        return
    data = event.data
    ended = isinstance(data, SubscriptionCanceled) or data.status in _ENDED
    new_plan = DEFAULT_PLAN if ended else plan_of(data.plan).id  # unknown plan ids fall back to Free
    await tenants.set_plan(tx, tenant.id, new_plan, event.occurred_at)
    if new_plan != tenant.plan:
        changed = TenantPlanChanged(old_plan=tenant.plan, new_plan=new_plan)
        await emit(
            tx, changed, tenant_id=tenant.id, by=SYSTEM, correlation_id=event.correlation_id or str(event.id)
        )


async def record_key_use(tx: Connection, data: ApiKeysUsed) -> None:
    ids: list[UUID] = []
    times = []
    for key_id, at in data.last_used.items():
        try:
            ids.append(UUID(key_id))
        except ValueError:
            log.warning("usage reported a malformed API key id %r; skipped", key_id)
            continue
        times.append(at)
    if ids:
        await keys.touch(tx, ids, times)
