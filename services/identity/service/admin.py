"""The first owner account of a fresh installation (`catalytic admin create`)."""

from __future__ import annotations

from uuid import UUID

import msgspec

from services.identity.service import emails, passwords
from services.identity.service.sessions import NewOwner, add_owner, clean_name, new_account_hash
from shared.db import Pool, transaction
from shared.events import SYSTEM
from shared.ids import uuid7


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
    password_hash = await new_account_hash(hasher, pool, address, password, name)
    tenant_id, user_id = uuid7(), uuid7()
    owner = NewOwner(email=address, company=name, first=None, last=None, password_hash=password_hash)
    async with transaction(pool) as tx:
        await add_owner(tx, owner, tenant_id=tenant_id, user_id=user_id, verified=True, by=SYSTEM)
    return CreatedOwner(tenant_id=tenant_id, user_id=user_id, email=address)
