"""The first owner account of a fresh installation (`catalytic admin create`)."""

from __future__ import annotations

from uuid import UUID

import msgspec

from services.identity import errors
from services.identity.repository import tenants, users
from services.identity.service import emails, passwords
from services.identity.service.common import emit
from services.identity.service.sessions import clean_name
from shared.db import Pool, transaction
from shared.events import SYSTEM, TenantCreated, UserRegistered
from shared.ids import uuid7
from shared.plans import DEFAULT_PLAN


class CreatedOwner(msgspec.Struct, frozen=True, kw_only=True):
    tenant_id: UUID
    user_id: UUID
    email: str


async def create_owner(
    hasher: passwords.PasswordHasher, pool: Pool, *, email: str, tenant_name: str, password: str
) -> CreatedOwner:
    """A tenant on the default plan and its owner, email already verified, no session.

    Refuses a weak password and an email that has an account (EmailTaken): running it twice
    changes nothing the second time."""
    address = emails.normalize(email)
    name = clean_name(tenant_name, "tenant", required=True) or ""
    passwords.check_strength(password, email=address, context=(name,))
    async with pool.acquire() as conn:
        if await users.email_taken(conn, address):
            raise errors.EmailTaken()
    password_hash = await hasher.hash(password)
    tenant_id, user_id = uuid7(), uuid7()
    async with transaction(pool) as tx:
        await tenants.insert(tx, tenant_id, name, DEFAULT_PLAN)
        created = await users.insert(
            tx,
            user_id=user_id,
            tenant_id=tenant_id,
            email=address,
            password_hash=password_hash,
            role="owner",
            first_name=None,
            last_name=None,
            verified=True,
        )
        if not created:
            raise errors.EmailTaken()
        created_event = TenantCreated(name=name, plan=DEFAULT_PLAN, owner_user_id=user_id)
        await emit(tx, created_event, tenant_id=tenant_id, by=SYSTEM)
        registered = UserRegistered(user_id=user_id, email=address, tenant_name=name, role="owner")
        await emit(tx, registered, tenant_id=tenant_id, by=SYSTEM)
    return CreatedOwner(tenant_id=tenant_id, user_id=user_id, email=address)
