"""Helpers for tests that call a service directly, the way the gateway would."""

from __future__ import annotations

import time
from functools import cache
from typing import Any
from uuid import UUID

from shared.auth.assertion import HEADER, AssertionSigner, Caller
from tests.conftest import TEST_ROOT


@cache
def _signer() -> AssertionSigner:
    # The e2e platform fixture generates this key set before any service starts.
    return AssertionSigner((TEST_ROOT / "keys" / "assertion_private.pem").read_text())


def as_caller(
    service: str,
    *,
    kind: str = "user",
    tenant_id: UUID | str | None = None,
    user_id: UUID | str | None = None,
    role: str | None = "owner",
    plan: str | None = "free",
    scopes: tuple[str, ...] = (),
    api_key_id: UUID | str | None = None,
    ip: str = "127.0.0.1",
    jti: str | None = None,
    ttl: float = 30.0,
) -> dict[str, str]:
    """Headers carrying a gateway assertion for `service` (the audience)."""
    fields: dict[str, Any] = {
        "kind": kind,
        "aud": service,
        "exp": time.time() + ttl,
        "request_id": "test",
        "tenant_id": _uuid(tenant_id),
        "user_id": _uuid(user_id),
        "api_key_id": _uuid(api_key_id),
        "role": role if kind == "user" else None,
        "plan": plan,
        "scopes": scopes,
        "ip": ip,
        "jti": jti,
    }
    return {HEADER: _signer().sign(Caller(**fields))}


def anonymous(service: str, ip: str = "127.0.0.1") -> dict[str, str]:
    return as_caller(service, kind="anonymous", role=None, plan=None, ip=ip)


def as_service(service: str) -> dict[str, str]:
    """What the gateway itself sends for internal calls (API-key verification)."""
    return as_caller(service, kind="service", role=None, plan=None)


def _uuid(value: UUID | str | None) -> UUID | None:
    return UUID(str(value)) if value is not None else None
