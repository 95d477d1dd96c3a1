"""The tenant, its users and roles, invitations and seats.

Rules: only owners and admins manage users; only an owner grants, changes or removes the owner
role; a tenant always keeps one owner; users plus pending invitations never exceed the plan's
seats. Checks run with the tenant row locked, so two concurrent changes cannot both pass.
"""

from __future__ import annotations

from datetime import timedelta
from typing import cast
from uuid import UUID

from services.identity import errors
from services.identity.repository import invitations, keys, sessions, tenants, users
from services.identity.repository.rows import Invitation, Tenant
from services.identity.schemas import (
    AcceptInvitationIn,
    Allowance,
    InvitationOut,
    InviteIn,
    MeOut,
    TenantOut,
    TenantPatch,
    TokenPair,
    UserOut,
)
from services.identity.service import emails, passwords, revocation
from services.identity.service.common import (
    Identity,
    actor,
    digest,
    emit,
    key_out,
    new_secret,
    now,
    signed_in,
    user_out,
)
from services.identity.service.sessions import clean_name, open_session
from shared.auth.assertion import Caller
from shared.auth.errors import InsufficientRole
from shared.db import Connection, Pool, transaction
from shared.events import (
    InvitationRevoked,
    Role,
    TenantUpdated,
    UserInvited,
    UserRegistered,
    UserRemoved,
    UserRoleChanged,
)
from shared.ids import uuid7
from shared.plans import plan as plan_of


def as_role(value: str) -> Role:
    """Roles come back from the database as text; the column's CHECK keeps them to these three."""
    if value not in ("owner", "admin", "member"):
        raise ValueError(f"unknown role {value!r}")
    return cast(Role, value)


def tenant_of(caller: Caller) -> UUID:
    tenant_id = signed_in(caller).tenant_id
    assert tenant_id is not None
    return tenant_id


async def acting_role(conn: Connection, caller: Caller) -> str:
    """The caller's role as stored now (a token's role claim may be minutes old).
    API keys with the admin scope act as admins, never as owners."""
    signed_in(caller)
    if caller.kind == "api_key":
        if "admin" in caller.scopes:
            return "admin"
        raise InsufficientRole("this API key lacks the 'admin' scope")
    me = await users.get(conn, tenant_of(caller), caller.user_id) if caller.user_id else None
    if me is None or me.role not in ("owner", "admin"):
        raise InsufficientRole("only an owner or admin may do this")
    return me.role


async def tenant_view(conn: Connection, tenant: Tenant) -> TenantOut:
    limits = plan_of(tenant.plan)
    return TenantOut(
        id=tenant.id,
        name=tenant.name,
        plan=limits.id,
        created_at=tenant.created_at,
        seats=Allowance(used=await tenants.seats_used(conn, tenant.id), limit=limits.seats),
        api_keys=Allowance(used=await tenants.active_keys(conn, tenant.id), limit=limits.api_keys),
    )


async def _tenant(conn: Connection, caller: Caller, *, lock: bool = False) -> Tenant:
    tenant_id = tenant_of(caller)
    found = await (tenants.lock(conn, tenant_id) if lock else tenants.get(conn, tenant_id))
    if found is None:
        raise errors.TenantNotFound()
    return found


async def me(conn: Connection, caller: Caller) -> MeOut:
    tenant = await _tenant(conn, caller)
    view = await tenant_view(conn, tenant)
    if caller.kind == "api_key" and caller.api_key_id is not None:
        key = await keys.get(conn, tenant.id, caller.api_key_id)
        if key is None:
            raise errors.ApiKeyNotFound()
        return MeOut(kind="api_key", tenant=view, plan=view.plan, api_key=key_out(key))
    user = await users.get(conn, tenant.id, caller.user_id) if caller.user_id else None
    if user is None:
        raise errors.UserNotFound()
    return MeOut(kind="user", tenant=view, role=user.role, plan=view.plan, user=user_out(user))


async def get_tenant(conn: Connection, caller: Caller) -> TenantOut:
    return await tenant_view(conn, await _tenant(conn, caller))


async def rename_tenant(tx: Connection, caller: Caller, data: TenantPatch) -> TenantOut:
    await acting_role(tx, caller)
    name = clean_name(data.name, "name", required=True) or ""
    tenant = await tenants.rename(tx, tenant_of(caller), name)
    if tenant is None:
        raise errors.TenantNotFound()
    await emit(tx, TenantUpdated(name=name), tenant_id=tenant.id, by=actor(caller))
    return await tenant_view(tx, tenant)


async def list_users(conn: Connection, caller: Caller) -> list[UserOut]:
    return [user_out(u) for u in await users.list_all(conn, tenant_of(caller))]


async def get_user(conn: Connection, caller: Caller, user_id: UUID) -> UserOut:
    found = await users.get(conn, tenant_of(caller), user_id)
    if found is None:
        raise errors.UserNotFound()
    return user_out(found)


async def change_role(ctx: Identity, tx: Connection, caller: Caller, user_id: UUID, role: str) -> UserOut:
    tenant = await _tenant(tx, caller, lock=True)
    acting = await acting_role(tx, caller)
    target = await users.get(tx, tenant.id, user_id)
    if target is None:
        raise errors.UserNotFound()
    if target.role == role:
        return user_out(target)
    if "owner" in (target.role, role) and acting != "owner":
        raise errors.OwnerRoleRequired()
    if target.role == "owner" and await users.count_owners(tx, tenant.id) <= 1:
        raise errors.LastOwner("promote another owner before changing the role of the last one")
    changed = await users.set_role(tx, tenant.id, user_id, role)
    assert changed is not None
    # Tokens carry the role: end the old ones now; a refresh issues the new role.
    await revocation.revoke_user(ctx.redis, user_id, ctx.settings.access_token_ttl_seconds)
    event = UserRoleChanged(user_id=user_id, old_role=as_role(target.role), new_role=as_role(changed.role))
    await emit(tx, event, tenant_id=tenant.id, by=actor(caller))
    return user_out(changed)


async def remove_user(ctx: Identity, tx: Connection, caller: Caller, user_id: UUID) -> None:
    tenant = await _tenant(tx, caller, lock=True)
    acting = await acting_role(tx, caller)
    target = await users.get(tx, tenant.id, user_id)
    if target is None:
        raise errors.UserNotFound()
    if target.role == "owner":
        if acting != "owner":
            raise errors.OwnerRoleRequired()
        if await users.count_owners(tx, tenant.id) <= 1:
            raise errors.LastOwner("the last owner cannot be removed")
    await sessions.revoke_user(tx, tenant.id, user_id, "user_removed")
    await users.delete(tx, tenant.id, user_id)
    await revocation.revoke_user(ctx.redis, user_id, ctx.settings.access_token_ttl_seconds)
    await emit(tx, UserRemoved(user_id=user_id, email=target.email), tenant_id=tenant.id, by=actor(caller))


def _invitation_out(inv: Invitation) -> InvitationOut:
    return InvitationOut(
        id=inv.id,
        email=inv.email,
        role=inv.role,
        invited_by=inv.invited_by,
        expires_at=inv.expires_at,
        created_at=inv.created_at,
    )


async def invite(ctx: Identity, tx: Connection, caller: Caller, data: InviteIn) -> InvitationOut:
    email = emails.normalize(data.email)
    tenant = await _tenant(tx, caller, lock=True)
    acting = await acting_role(tx, caller)
    if data.role == "owner" and acting != "owner":
        raise errors.OwnerRoleRequired()
    if await users.email_taken(tx, email):
        raise errors.EmailTaken()
    if await invitations.is_pending(tx, tenant.id, email):
        raise errors.InvitationPending()
    limit = plan_of(tenant.plan).seats
    if await tenants.seats_used(tx, tenant.id) >= limit:
        raise errors.SeatLimitReached(
            f"the {plan_of(tenant.plan).name} plan has {limit} seats; upgrade for more"
        )
    token, token_hash = new_secret()
    inv = await invitations.insert(
        tx,
        invitation_id=uuid7(),
        tenant_id=tenant.id,
        email=email,
        role=data.role,
        token_hash=token_hash,
        invited_by=caller.user_id,
        expires_at=now() + timedelta(seconds=ctx.settings.invitation_ttl_seconds),
    )
    if inv is None:
        raise errors.InvitationPending()
    event = UserInvited(
        invitation_id=inv.id,
        email=email,
        role=data.role,
        token=token,
        tenant_name=tenant.name,
        invited_by=caller.user_id,
    )
    await emit(tx, event, tenant_id=tenant.id, by=actor(caller))
    return _invitation_out(inv)


async def list_invitations(conn: Connection, caller: Caller) -> list[InvitationOut]:
    await acting_role(conn, caller)
    return [_invitation_out(i) for i in await invitations.pending(conn, tenant_of(caller))]


async def revoke_invitation(tx: Connection, caller: Caller, invitation_id: UUID) -> None:
    await acting_role(tx, caller)
    inv = await invitations.revoke(tx, tenant_of(caller), invitation_id)
    if inv is None:
        raise errors.InvitationNotFound()
    event = InvitationRevoked(invitation_id=inv.id, email=inv.email)
    await emit(tx, event, tenant_id=inv.tenant_id, by=actor(caller))


async def accept_invitation(ctx: Identity, pool: Pool, data: AcceptInvitationIn, caller: Caller) -> TokenPair:
    """The invitee sets a password and is signed in; the email link proved the address."""
    token_hash = digest(data.token)
    async with pool.acquire() as conn:
        inv = await invitations.peek(conn, token_hash)
        tenant = await tenants.get(conn, inv.tenant_id) if inv else None
        if inv is not None and await users.email_taken(conn, inv.email):
            raise errors.EmailTaken()
    if inv is None or tenant is None:
        raise errors.InvitationInvalid()
    first, last = clean_name(data.first_name, "first_name"), clean_name(data.last_name, "last_name")
    passwords.check_strength(data.password, email=inv.email, context=(tenant.name,))
    password_hash = await ctx.hasher.hash(data.password)
    user_id = uuid7()
    async with transaction(pool) as tx:
        tenant = await tenants.lock(tx, inv.tenant_id)
        accepted = await invitations.accept(tx, token_hash)
        if tenant is None or accepted is None:
            raise errors.InvitationInvalid()
        if await users.count(tx, tenant.id) >= plan_of(tenant.plan).seats:
            raise errors.SeatLimitReached("every seat of this tenant's plan is taken")
        created = await users.insert(
            tx,
            user_id=user_id,
            tenant_id=tenant.id,
            email=accepted.email,
            password_hash=password_hash,
            role=accepted.role,
            first_name=first,
            last_name=last,
            verified=True,
        )
        if not created:
            raise errors.EmailTaken()
        user = await users.get(tx, tenant.id, user_id)
        assert user is not None
        event = UserRegistered(
            user_id=user_id,
            email=user.email,
            first_name=first,
            tenant_name=tenant.name,
            role=as_role(accepted.role),
        )
        await emit(tx, event, tenant_id=tenant.id, by=actor(caller, user_id))
        return await open_session(ctx, tx, user, tenant.plan, caller, method="invitation")
