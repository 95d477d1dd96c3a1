"""Event handlers of the billing service: tenants' names and owner emails, from identity's events.

Billing names a tenant's Stripe customer after the tenant and bills its owner's email; it keeps
its own projection of those facts instead of reading identity's schema.
"""

from __future__ import annotations

from typing import Any

from services.billing import repository as repo
from shared.bus import Registry
from shared.db import Connection
from shared.events import Event, TenantCreated, UserRegistered, UserRemoved, UserRoleChanged

contacts = Registry[Any]()


@contacts.on(TenantCreated)
async def tenant_created(tx: Connection, event: Event[TenantCreated], deps: Any) -> None:
    if event.tenant_id is not None:
        await repo.upsert_tenant(tx, event.tenant_id, event.data.name, event.data.owner_user_id)


@contacts.on(UserRegistered)
async def user_registered(tx: Connection, event: Event[UserRegistered], deps: Any) -> None:
    if event.tenant_id is None:
        return
    data = event.data
    await repo.upsert_user(tx, event.tenant_id, data.user_id, data.email, data.role)
    await repo.upsert_tenant(tx, event.tenant_id, data.tenant_name or None, None)


@contacts.on(UserRoleChanged)
async def role_changed(tx: Connection, event: Event[UserRoleChanged], deps: Any) -> None:
    if event.tenant_id is not None:
        await repo.set_user_role(tx, event.tenant_id, event.data.user_id, event.data.new_role)


@contacts.on(UserRemoved)
async def user_removed(tx: Connection, event: Event[UserRemoved], deps: Any) -> None:
    if event.tenant_id is not None:
        await repo.remove_user(tx, event.tenant_id, event.data.user_id)
