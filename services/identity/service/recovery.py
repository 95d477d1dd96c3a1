"""Password reset and email verification: single-use tokens stored hashed; the token itself
travels only inside the outbox event the notifier turns into a link."""

from __future__ import annotations

from datetime import timedelta

from redis.asyncio import Redis

from services.identity import errors
from services.identity.repository import sessions, tenants, tokens, users
from services.identity.repository.rows import User
from services.identity.schemas import PasswordResetConfirmIn, PasswordResetIn, VerifyEmailIn
from services.identity.service import emails, passwords, revocation
from services.identity.service.common import Identity, actor, digest, emit, new_secret, now, signed_in
from services.identity.service.throttle import account_key
from shared.auth.assertion import Caller
from shared.db import Connection, Pool, transaction
from shared.errors import RateLimited
from shared.events import (
    Actor,
    EmailVerificationRequested,
    EmailVerified,
    PasswordChanged,
    PasswordResetRequested,
)
from shared.ids import uuid7

RESET = "password_reset"
VERIFY = "email_verification"


async def request_reset(ctx: Identity, tx: Connection, data: PasswordResetIn, caller: Caller) -> None:
    """Always ends in 202: whether the account exists is never revealed."""
    email = emails.normalize(data.email)
    user = await users.by_email(tx, email)
    if user is None:
        return
    # Capped per account so the endpoint cannot be used to flood someone's inbox.
    if not await _within(ctx.redis, f"reset:sent:{account_key(email)}", ctx.settings.password_reset_per_hour):
        return
    await tokens.void_all(tx, user.tenant_id, user.id, RESET)
    token, token_hash = new_secret()
    expires_at = now() + timedelta(seconds=ctx.settings.password_reset_ttl_seconds)
    await tokens.insert(
        tx,
        token_id=uuid7(),
        purpose=RESET,
        user_id=user.id,
        tenant_id=user.tenant_id,
        token_hash=token_hash,
        expires_at=expires_at,
    )
    event = PasswordResetRequested(user_id=user.id, email=user.email, token=token, expires_at=expires_at)
    await emit(tx, event, tenant_id=user.tenant_id, by=actor(caller))


async def confirm_reset(ctx: Identity, pool: Pool, data: PasswordResetConfirmIn, caller: Caller) -> None:
    token_hash = digest(data.token)
    async with pool.acquire() as conn:
        found = await tokens.peek(conn, RESET, token_hash)
        user = await users.get(conn, found.tenant_id, found.user_id) if found else None
        tenant = await tenants.get(conn, user.tenant_id) if user else None
    if user is None or tenant is None:
        raise errors.ResetTokenInvalid()
    passwords.check_strength(data.new_password, email=user.email, context=(tenant.name,))
    new_hash = await ctx.hasher.hash(data.new_password)
    async with transaction(pool) as tx:
        if await tokens.consume(tx, RESET, token_hash) is None:  # used meanwhile
            raise errors.ResetTokenInvalid()
        by = actor(caller, user.id)
        await replace_password(ctx, tx, user, new_hash, by, reason="password_reset")
        if await users.mark_verified(tx, user.tenant_id, user.id):  # the link proved the mailbox
            await emit(tx, EmailVerified(user_id=user.id, email=user.email), tenant_id=user.tenant_id, by=by)
    await ctx.throttle.clear_account(user.email)


async def replace_password(
    ctx: Identity, tx: Connection, user: User, password_hash: str, by: Actor, *, reason: str
) -> None:
    """New hash; every session and pending reset link of the user revoked (change and reset)."""
    await users.set_password(tx, user.tenant_id, user.id, password_hash)
    await sessions.revoke_user(tx, user.tenant_id, user.id, reason)
    await tokens.void_all(tx, user.tenant_id, user.id, RESET)
    await revocation.revoke_user(ctx.redis, user.id, ctx.settings.access_token_ttl_seconds)
    await emit(tx, PasswordChanged(user_id=user.id, email=user.email), tenant_id=user.tenant_id, by=by)


async def send_verification(ctx: Identity, tx: Connection, user: User, tenant_name: str, by: Actor) -> None:
    await tokens.void_all(tx, user.tenant_id, user.id, VERIFY)
    token, token_hash = new_secret()
    await tokens.insert(
        tx,
        token_id=uuid7(),
        purpose=VERIFY,
        user_id=user.id,
        tenant_id=user.tenant_id,
        token_hash=token_hash,
        expires_at=now() + timedelta(seconds=ctx.settings.email_verification_ttl_seconds),
    )
    event = EmailVerificationRequested(
        user_id=user.id, email=user.email, token=token, tenant_name=tenant_name
    )
    await emit(tx, event, tenant_id=user.tenant_id, by=by)


async def verify_email(ctx: Identity, tx: Connection, data: VerifyEmailIn, caller: Caller) -> None:
    found = await tokens.consume(tx, VERIFY, digest(data.token))
    if found is None:
        raise errors.VerificationTokenInvalid()
    user = await users.get(tx, found.tenant_id, found.user_id)
    if user is not None and await users.mark_verified(tx, user.tenant_id, user.id):
        by = actor(caller, user.id)
        await emit(tx, EmailVerified(user_id=user.id, email=user.email), tenant_id=user.tenant_id, by=by)


async def resend_verification(ctx: Identity, tx: Connection, caller: Caller) -> None:
    if signed_in(caller).kind != "user" or caller.user_id is None or caller.tenant_id is None:
        raise errors.UserSessionRequired()
    user = await users.get(tx, caller.tenant_id, caller.user_id)
    tenant = await tenants.get(tx, caller.tenant_id)
    if user is None or tenant is None:
        raise errors.UserNotFound()
    if user.email_verified_at is not None:
        raise errors.EmailAlreadyVerified()
    if not await _within(ctx.redis, f"verify:sent:{user.id}", ctx.settings.password_reset_per_hour):
        raise RateLimited(
            "verification email sent too often; try again later", headers={"Retry-After": "3600"}
        )
    await send_verification(ctx, tx, user, tenant.name, actor(caller))


async def _within(redis: Redis, key: str, per_hour: int) -> bool:
    pipe = redis.pipeline(transaction=True)
    pipe.set(key, 0, ex=3_600, nx=True)  # the window starts with the first request (Redis 6.2 too)
    pipe.incr(key)
    _, count = await pipe.execute()
    return int(count) <= per_hour
