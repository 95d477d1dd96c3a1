"""Request and response bodies of the identity API (msgspec validates types and bounds)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

import msgspec
from msgspec import Meta

RoleName = Literal["owner", "admin", "member"]
_PRINTABLE = r"^[^\x00-\x1f\x7f]*$"  # no control characters (NUL cannot be stored anyway)
Email = Annotated[str, Meta(min_length=1, max_length=320)]
Password = Annotated[str, Meta(min_length=1, max_length=1024)]
Name = Annotated[str, Meta(min_length=1, max_length=200, pattern=_PRINTABLE)]
PersonName = Annotated[str, Meta(max_length=100, pattern=_PRINTABLE)]
Token = Annotated[str, Meta(min_length=16, max_length=200, pattern=r"^[A-Za-z0-9_-]+$")]
Scope = Annotated[str, Meta(pattern=r"^[a-z][a-z0-9:._-]{0,63}$")]
AwareDatetime = Annotated[datetime, Meta(tz=True)]


class _In(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Unknown fields are errors: a misspelt field must not be silently ignored."""


class RegisterIn(_In):
    email: Email
    password: Password
    company_name: Name
    first_name: PersonName | None = None
    last_name: PersonName | None = None


class LoginIn(_In):
    email: Email
    password: Password


class RefreshIn(_In):
    refresh_token: Token


class LogoutIn(_In):
    refresh_token: Token | None = None


class PasswordResetIn(_In):
    email: Email


class PasswordResetConfirmIn(_In):
    token: Token
    new_password: Password


class VerifyEmailIn(_In):
    token: Token


class AcceptInvitationIn(_In):
    token: Token
    password: Password
    first_name: PersonName | None = None
    last_name: PersonName | None = None


class ChangePasswordIn(_In):
    current_password: Password
    new_password: Password


class TenantPatch(_In):
    name: Name


class InviteIn(_In):
    email: Email
    role: RoleName = "member"


class RolePatch(_In):
    role: RoleName


class ApiKeyIn(_In):
    name: Annotated[str, Meta(min_length=1, max_length=100, pattern=_PRINTABLE)]
    scopes: Annotated[list[Scope], Meta(max_length=32)] = []
    expires_at: AwareDatetime | None = None
    env: Literal["live", "test"] = "live"


class VerifyKeyIn(_In):
    env: Literal["live", "test"]
    prefix: Annotated[str, Meta(pattern=r"^[a-z0-9]{12}$")]
    secret_hash: Annotated[str, Meta(pattern=r"^[0-9a-f]{64}$")]


# --- responses --------------------------------------------------------------------------


class TokenPair(msgspec.Struct, frozen=True, kw_only=True):
    tenant_id: UUID
    user_id: UUID
    access_token: str
    refresh_token: str
    token_type: str = "bearer"  # noqa: S105 - the OAuth token type, not a secret
    expires_in: int


class UserOut(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    email: str
    first_name: str | None
    last_name: str | None
    role: str
    email_verified: bool
    created_at: datetime


class Allowance(msgspec.Struct, frozen=True, kw_only=True):
    used: int
    limit: int


class TenantOut(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    name: str
    plan: str
    created_at: datetime
    seats: Allowance
    api_keys: Allowance


class ApiKeyOut(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    name: str
    env: str
    prefix: str
    scopes: list[str]
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    created_by: UUID | None


class ApiKeyCreated(ApiKeyOut, frozen=True, kw_only=True):
    key: str  # the full key: shown in this response only, never again


class MeOut(msgspec.Struct, frozen=True, kw_only=True):
    kind: str  # "user" or "api_key"
    tenant: TenantOut
    role: str | None = None
    plan: str
    user: UserOut | None = None
    api_key: ApiKeyOut | None = None


class InvitationOut(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    email: str
    role: str
    invited_by: UUID | None
    expires_at: datetime
    created_at: datetime


class VerifiedKey(msgspec.Struct, frozen=True, kw_only=True):
    key_id: UUID
    tenant_id: UUID
    scopes: list[str]
    plan: str
    expires_at: datetime | None
