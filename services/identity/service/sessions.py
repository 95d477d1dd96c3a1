"""Sign-up, login, refresh-token rotation with theft detection, logout, password change.

Flows that hash a password take the pool and open their transaction only after argon2 has
run, so ~35 ms of hashing never holds a database connection.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID

import msgspec

from services.identity import errors
from services.identity.repository import sessions, tenants, users
from services.identity.repository.rows import RefreshToken, User
from services.identity.schemas import ChangePasswordIn, LoginIn, LogoutIn, RefreshIn, RegisterIn, TokenPair
from services.identity.service import emails, passwords, revocation
from services.identity.service.common import Identity, actor, digest, emit, new_secret, now, signed_in
from services.identity.service.recovery import replace_password, send_verification
from shared.auth.assertion import Caller
from shared.db import Connection, Pool, transaction
from shared.errors import InvalidInput
from shared.events import (
    Actor,
    RefreshReuseDetected,
    SessionCreated,
    SessionRefreshed,
    SessionRevoked,
    TenantCreated,
    UserRegistered,
)
from shared.ids import uuid7
from shared.plans import DEFAULT_PLAN


def clean_name(value: str | None, field: str, *, required: bool = False) -> str | None:
    text = (value or "").strip()
    if not text:
        if required:
            raise InvalidInput(f"{field} must not be blank")
        return None
    return text


async def register(ctx: Identity, pool: Pool, data: RegisterIn, caller: Caller) -> TokenPair:
    """A new tenant on the Free plan with its owner, signed in."""
    email = emails.normalize(data.email)
    company = clean_name(data.company_name, "company_name", required=True) or ""
    first, last = clean_name(data.first_name, "first_name"), clean_name(data.last_name, "last_name")
    password_hash = await new_account_hash(ctx.hasher, pool, email, data.password, company)
    tenant_id, user_id = uuid7(), uuid7()
    async with transaction(pool) as tx:
        by = actor(caller, user_id)
        owner = NewOwner(email=email, company=company, first=first, last=last, password_hash=password_hash)
        await add_owner(tx, owner, tenant_id=tenant_id, user_id=user_id, verified=False, by=by)
        user = await users.get(tx, tenant_id, user_id)
        assert user is not None
        await send_verification(ctx, tx, user, company, by)
        return await open_session(ctx, tx, user, DEFAULT_PLAN, caller, method="registration")


class NewOwner(msgspec.Struct, frozen=True, kw_only=True):
    email: str
    company: str
    first: str | None
    last: str | None
    password_hash: str


async def new_account_hash(
    hasher: passwords.PasswordHasher, pool: Pool, email: str, password: str, company: str
) -> str:
    """Refuses a weak password or a taken email before ~35 ms of argon2, then hashes."""
    passwords.check_strength(password, email=email, context=(company,))
    async with pool.acquire() as conn:
        if await users.email_taken(conn, email):
            raise errors.EmailTaken()
    return await hasher.hash(password)


async def add_owner(
    tx: Connection, owner: NewOwner, *, tenant_id: UUID, user_id: UUID, verified: bool, by: Actor
) -> None:
    """A tenant on the default plan and its owner, with their events (EmailTaken on a race)."""
    await tenants.insert(tx, tenant_id, owner.company, DEFAULT_PLAN)
    created = await users.insert(
        tx,
        user_id=user_id,
        tenant_id=tenant_id,
        email=owner.email,
        password_hash=owner.password_hash,
        role="owner",
        first_name=owner.first,
        last_name=owner.last,
        verified=verified,
    )
    if not created:
        raise errors.EmailTaken()
    created_event = TenantCreated(name=owner.company, plan=DEFAULT_PLAN, owner_user_id=user_id)
    await emit(tx, created_event, tenant_id=tenant_id, by=by)
    registered = UserRegistered(
        user_id=user_id, email=owner.email, first_name=owner.first, tenant_name=owner.company, role="owner"
    )
    await emit(tx, registered, tenant_id=tenant_id, by=by)


async def login(ctx: Identity, pool: Pool, data: LoginIn, caller: Caller) -> TokenPair:
    """Same answer, and one argon2 computation, whether or not the email exists."""
    email = emails.normalize(data.email)
    await ctx.throttle.check(email, caller.ip)
    try:
        async with pool.acquire() as conn:
            user = await users.by_email(conn, email)
        ok = await ctx.hasher.verify(user.password_hash if user else None, data.password)
    except BaseException:
        await ctx.throttle.release(email, caller.ip)
        raise
    if user is None or not ok:
        await ctx.throttle.failed(email, caller.ip)
        raise errors.InvalidCredentials()
    await ctx.throttle.succeeded(email, caller.ip)
    if ctx.hasher.needs_rehash(user.password_hash):  # parameters were raised since it was set
        upgraded = await ctx.hasher.hash(data.password)
        async with pool.acquire() as conn:
            await users.rehash(conn, user.tenant_id, user.id, user.password_hash, upgraded)
    async with transaction(pool) as tx:
        tenant = await tenants.get(tx, user.tenant_id)
        plan = tenant.plan if tenant else DEFAULT_PLAN
        return await open_session(ctx, tx, user, plan, caller, method="password")


async def open_session(
    ctx: Identity,
    tx: Connection,
    user: User,
    plan: str,
    caller: Caller,
    *,
    method: str | None = None,
    family: RefreshToken | None = None,
) -> TokenPair:
    """Issue an access token and a refresh token: a new family, or the next one of `family`."""
    s = ctx.settings
    access, claims = ctx.signer.issue(
        user_id=str(user.id), tenant_id=str(user.tenant_id), role=user.role, plan=plan
    )
    refresh, refresh_hash = new_secret()
    started = now()
    family_id = family.family_id if family else uuid7()
    family_end = family.family_expires_at if family else started + timedelta(seconds=s.session_max_seconds)
    await sessions.insert(
        tx,
        token_id=uuid7(),
        family_id=family_id,
        user_id=user.id,
        tenant_id=user.tenant_id,
        token_hash=refresh_hash,
        access_jti=claims.jti,
        access_expires_at=datetime.fromtimestamp(claims.exp, UTC),
        expires_at=min(started + timedelta(seconds=s.refresh_token_ttl_seconds), family_end),
        family_expires_at=family_end,
        ip=caller.ip,
    )
    by = actor(caller, user.id)
    if family is None:
        event = SessionCreated(user_id=user.id, family_id=family_id, method=method or "password")
        await emit(tx, event, tenant_id=user.tenant_id, by=by)
    else:
        await emit(
            tx, SessionRefreshed(user_id=user.id, family_id=family_id), tenant_id=user.tenant_id, by=by
        )
    return TokenPair(
        tenant_id=user.tenant_id,
        user_id=user.id,
        access_token=access,
        refresh_token=refresh,
        expires_in=s.access_token_ttl_seconds,
    )


async def refresh(ctx: Identity, pool: Pool, data: RefreshIn, caller: Caller) -> TokenPair:
    # Its own transaction: a detected reuse must commit its revocation and still answer 401.
    async with transaction(pool) as tx:
        pair = await _rotate(ctx, tx, digest(data.refresh_token), caller)
    if pair is None:
        raise errors.RefreshTokenReused()
    return pair


async def _rotate(ctx: Identity, tx: Connection, token_hash: str, caller: Caller) -> TokenPair | None:
    row = await sessions.lock_by_hash(tx, token_hash)
    if row is None or row.revoked_at is not None:
        raise errors.RefreshTokenInvalid()
    if row.rotated_at is not None:
        # A rotated token came back: it was copied. Whoever holds the family is cut off.
        await sessions.revoke_family(tx, row.family_id, "reuse_detected")
        await revocation.revoke_user(ctx.redis, row.user_id, ctx.settings.access_token_ttl_seconds)
        by = actor(caller, row.user_id)
        await emit(
            tx,
            RefreshReuseDetected(user_id=row.user_id, family_id=row.family_id),
            tenant_id=row.tenant_id,
            by=by,
        )
        return None
    if row.expires_at <= now():
        raise errors.RefreshTokenInvalid("refresh token expired; sign in again")
    user = await users.get(tx, row.tenant_id, row.user_id)
    tenant = await tenants.get(tx, row.tenant_id)
    if user is None or tenant is None:
        raise errors.RefreshTokenInvalid()
    await sessions.mark_rotated(tx, row.id)
    # Role and plan are read again: a refresh picks up a role change or a new plan.
    return await open_session(ctx, tx, user, tenant.plan, caller, family=row)


async def logout(ctx: Identity, tx: Connection, caller: Caller, data: LogoutIn | None) -> None:
    """Revoke this access token (Redis, for the gateway) and its refresh family (here)."""
    user_id = _signed_in(caller)
    assert caller.tenant_id is not None
    rows: list[RefreshToken] = []
    if caller.jti:
        found = await sessions.by_access_jti(tx, caller.tenant_id, user_id, caller.jti)
        rows += [found] if found else []
    if data is not None and data.refresh_token:
        found = await sessions.by_hash_of_user(tx, caller.tenant_id, user_id, digest(data.refresh_token))
        rows += [found] if found else []
    if caller.jti:
        mine = next((r for r in rows if r.access_jti == caller.jti), None)
        remaining = (
            (mine.access_expires_at - now()).total_seconds()
            if mine
            else ctx.settings.access_token_ttl_seconds
        )
        await revocation.revoke_jti(ctx.redis, caller.jti, remaining)
    families = sorted({r.family_id for r in rows})
    for family in families:
        await sessions.revoke_family(tx, family, "logout")
    by = actor(caller)
    ended: list[UUID | None] = [*families] or [None]  # a token without a session still gets its event
    for family_id in ended:
        event = SessionRevoked(user_id=user_id, family_id=family_id, jti=caller.jti, reason="logout")
        await emit(tx, event, tenant_id=caller.tenant_id, by=by)


async def change_password(ctx: Identity, pool: Pool, caller: Caller, data: ChangePasswordIn) -> TokenPair:
    """New password, every other session ended, and a fresh pair for this one."""
    user_id = _signed_in(caller)
    assert caller.tenant_id is not None
    async with pool.acquire() as conn:
        user = await users.get(conn, caller.tenant_id, user_id)
        tenant = await tenants.get(conn, caller.tenant_id)
    if user is None or tenant is None:
        raise errors.UserNotFound()
    passwords.check_strength(data.new_password, email=user.email, context=(tenant.name,))
    await ctx.throttle.check(user.email, caller.ip)
    try:
        ok = await ctx.hasher.verify(user.password_hash, data.current_password)
    except BaseException:
        await ctx.throttle.release(user.email, caller.ip)
        raise
    if not ok:
        await ctx.throttle.failed(user.email, caller.ip)
        raise errors.WrongPassword()
    await ctx.throttle.succeeded(user.email, caller.ip)
    new_hash = await ctx.hasher.hash(data.new_password)
    async with transaction(pool) as tx:
        await replace_password(ctx, tx, user, new_hash, actor(caller), reason="password_changed")
        return await open_session(ctx, tx, user, tenant.plan, caller, method="password_change")


def _signed_in(caller: Caller) -> UUID:
    if signed_in(caller).kind != "user" or caller.user_id is None:
        raise errors.UserSessionRequired()
    return caller.user_id


async def list_sessions(conn: Connection, caller: Caller) -> list[sessions.Session]:
    """The caller's live logins (one per device), the current one marked."""
    user_id = _signed_in(caller)
    assert caller.tenant_id is not None
    return await sessions.live_families(conn, caller.tenant_id, user_id, caller.jti)


async def end_session(ctx: Identity, tx: Connection, caller: Caller, family_id: UUID) -> None:
    """Sign one device out: its refresh family now, its access token when it is this one."""
    user_id = _signed_in(caller)
    assert caller.tenant_id is not None
    current = await sessions.by_access_jti(tx, caller.tenant_id, user_id, caller.jti) if caller.jti else None
    if not await sessions.revoke_family_of_user(tx, caller.tenant_id, user_id, family_id):
        raise errors.SessionNotFound()
    if current is not None and current.family_id == family_id and caller.jti:
        await revocation.revoke_jti(
            ctx.redis, caller.jti, (current.access_expires_at - now()).total_seconds()
        )
    event = SessionRevoked(user_id=user_id, family_id=family_id, reason="user_revoked")
    await emit(tx, event, tenant_id=caller.tenant_id, by=actor(caller))
