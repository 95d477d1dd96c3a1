"""Domain events → audit rows: who did what to which target, with secrets taken out (pure)."""

from __future__ import annotations

from typing import Any

import msgspec

from services.usage.metering import valid_ip
from services.usage.models import AuditRow
from shared.events import Event

REDACTED = "[redacted]"
# Payload fields that carry credentials (invitation, verification and reset tokens, key hashes):
# an admin reading the audit log must never be able to act as someone else with them.
_SECRET_NAMES = frozenset({"token", "secret", "password", "key_hash", "secret_hash", "client_secret"})
_SECRET_SUFFIXES = ("_token", "_secret", "_password", "_hash")

# What an event acts on, by the first payload field present (most specific first).
_TARGETS = (
    ("key_id", "api_key"),
    ("invitation_id", "invitation"),
    ("user_id", "user"),
    ("subscription_id", "subscription"),
    ("invoice_id", "invoice"),
    ("session_id", "checkout_session"),
    ("endpoint_id", "webhook_endpoint"),
    ("to", "email"),
)
MAX_CORRELATION = 200


def audit_row(event: Event[Any]) -> AuditRow:
    data = redact(msgspec.to_builtins(event.data))
    target_type, target_id = target_of(data, event)
    correlation = clean(event.correlation_id)[:MAX_CORRELATION] if event.correlation_id else None
    return AuditRow(
        id=event.id,
        tenant_id=event.tenant_id,
        actor_kind=event.actor.kind,
        actor_id=clean(event.actor.id) if event.actor.id else None,
        action=event.type,
        target_type=target_type,
        target_id=target_id,
        correlation_id=correlation,
        source_ip=valid_ip(event.actor.ip) if event.actor.ip else None,
        data=data if isinstance(data, dict) else {"value": data},
        occurred_at=event.occurred_at,
    )


def target_of(data: Any, event: Event[Any]) -> tuple[str | None, str | None]:
    if isinstance(data, dict):
        for field, kind in _TARGETS:
            value = data.get(field)
            if value is not None and value != REDACTED:
                return kind, str(value)
    if event.tenant_id is not None:
        return "tenant", str(event.tenant_id)
    return None, None


def is_secret(name: str) -> bool:
    lowered = name.lower()
    return lowered in _SECRET_NAMES or lowered.endswith(_SECRET_SUFFIXES)


def redact(value: Any) -> Any:
    """Secrets replaced, NULs dropped (jsonb refuses them: one would block the event for good)."""
    if isinstance(value, dict):
        return {clean(str(k)): REDACTED if is_secret(str(k)) else redact(v) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v) for v in value]
    if isinstance(value, str):
        return clean(value)
    return value


def clean(value: str) -> str:
    return value.replace("\x00", "") if "\x00" in value else value
