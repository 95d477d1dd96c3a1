"""What every identity flow uses: the process context, secrets, actors and events."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

from redis.asyncio import Redis

from services.identity.repository.rows import ApiKey, Tenant, User
from services.identity.schemas import ApiKeyOut, UserOut
from services.identity.service.passwords import PasswordHasher
from services.identity.service.throttle import LoginThrottle
from services.identity.settings import IdentitySettings
from shared import context
from shared.auth.assertion import Caller
from shared.auth.errors import LoginRequired
from shared.auth.tokens import TokenSigner
from shared.bus import add_event
from shared.db import Connection
from shared.events import Actor, Payload, new_event


@dataclass
class Identity:
    """Built once per process at startup; handed to every flow."""

    settings: IdentitySettings
    redis: Redis
    signer: TokenSigner
    hasher: PasswordHasher
    throttle: LoginThrottle


def now() -> datetime:
    return datetime.now(UTC)


def new_secret() -> tuple[str, str]:
    """A 256-bit URL-safe token and the SHA-256 that is stored instead of it."""
    token = secrets.token_urlsafe(32)
    return token, digest(token)


def digest(token: str) -> str:
    # Tokens carry 256 bits of entropy: a fast hash is enough (nothing to brute-force).
    return hashlib.sha256(token.encode()).hexdigest()


def signed_in(caller: Caller) -> Caller:
    """A user or API key of a tenant (not anonymous, not the gateway itself)."""
    if not caller.is_authenticated:
        raise LoginRequired()
    return caller


def actor(caller: Caller, user_id: UUID | None = None) -> Actor:
    if caller.kind == "api_key":
        return Actor(kind="api_key", id=str(caller.api_key_id), ip=caller.ip)
    subject = caller.user_id or user_id
    return Actor(kind="user", id=str(subject) if subject else None, ip=caller.ip)


async def emit(
    tx: Connection, data: Payload, *, tenant_id: UUID | None, by: Actor, correlation_id: str | None = None
) -> None:
    """The event goes into the outbox in the caller's transaction, with the request's id."""
    correlation = correlation_id or context.correlation_id.get()
    await add_event(tx, new_event(data, tenant_id=tenant_id, actor=by, correlation_id=correlation))


def user_out(user: User) -> UserOut:
    return UserOut(
        id=user.id,
        email=user.email,
        first_name=user.first_name,
        last_name=user.last_name,
        role=user.role,
        email_verified=user.email_verified_at is not None,
        created_at=user.created_at,
    )


def key_out(key: ApiKey) -> ApiKeyOut:
    return ApiKeyOut(
        id=key.id,
        name=key.name,
        env=key.env,
        prefix=key.prefix,
        scopes=list(key.scopes),
        created_at=key.created_at,
        expires_at=key.expires_at,
        last_used_at=key.last_used_at,
        created_by=key.created_by,
    )


def tenant_name(tenant: Tenant | None) -> str:
    return tenant.name if tenant is not None else ""
