"""Row Structs returned by the repository (internal; the API has its own output types)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypeVar
from uuid import UUID

import msgspec
from asyncpg import Record

T = TypeVar("T", bound=msgspec.Struct)


def one(row: Record | None, kind: type[T]) -> T | None:
    return kind(**dict(row)) if row is not None else None


def many(rows: list[Record], kind: type[T]) -> list[T]:
    return [kind(**dict(r)) for r in rows]


class Tenant(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    name: str
    plan: str
    plan_changed_at: datetime | None
    created_at: datetime


class User(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    tenant_id: UUID
    email: str
    password_hash: str
    first_name: str | None
    last_name: str | None
    role: str
    email_verified_at: datetime | None
    created_at: datetime


class RefreshToken(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    family_id: UUID
    user_id: UUID
    tenant_id: UUID
    access_jti: str
    access_expires_at: datetime
    expires_at: datetime
    family_expires_at: datetime
    rotated_at: datetime | None
    revoked_at: datetime | None


class OneTimeToken(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    purpose: str
    user_id: UUID
    tenant_id: UUID
    expires_at: datetime


class Invitation(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    tenant_id: UUID
    email: str
    role: str
    invited_by: UUID | None
    expires_at: datetime
    created_at: datetime


class ApiKey(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    tenant_id: UUID
    name: str
    env: str
    prefix: str
    secret_hash: str
    scopes: list[str]
    created_by: UUID | None
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None


def columns(kind: type[Any]) -> str:
    """The SELECT list of a row Struct, so queries and Structs cannot drift apart."""
    return ", ".join(f.name for f in msgspec.structs.fields(kind))
