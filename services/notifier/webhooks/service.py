"""Tenant webhooks: endpoints, which events reach them, signed attempts and what failures lead to."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import urlsplit
from uuid import UUID

import msgspec

from services.notifier import errors
from services.notifier.deps import Deps
from services.notifier.mail import notifications
from services.notifier.repository import webhooks as repo
from services.notifier.repository.webhooks import Attempt, Delivery, Endpoint, Work
from services.notifier.webhooks import signing
from services.notifier.webhooks.client import Outcome, WebhookClient
from services.notifier.webhooks.ssrf import AddressBlocked, Policy, resolve
from shared.auth.assertion import Caller
from shared.bus import add_event
from shared.db import Connection
from shared.events import CATALOG, DOMAIN_STREAMS, Event, WebhookEndpointDisabled, new_event
from shared.ids import uuid7

log = logging.getLogger("catalytic.notifier.webhooks")

# Fields that must never leave the platform in a tenant webhook (they grant access on their own).
SENSITIVE_FIELDS = frozenset({"token", "key_hash"})
MAX_ROTATION_OVERLAP = 7 * 86_400.0

Url = Annotated[str, msgspec.Meta(min_length=1, max_length=2048)]
EventType = Annotated[str, msgspec.Meta(min_length=1, max_length=120)]
EventTypes = Annotated[list[EventType], msgspec.Meta(min_length=1, max_length=100)]
# Postgres text cannot hold NUL: refuse it here (422) rather than fail at the INSERT (500).
Description = Annotated[str, msgspec.Meta(max_length=500, pattern=r"^[^\x00]*$")]


class EndpointIn(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    url: Url
    description: Description = ""
    event_types: EventTypes | None = None  # omitted or null: every event of the tenant
    enabled: bool = True


class EndpointPatch(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    url: Url | msgspec.UnsetType = msgspec.UNSET
    description: Description | msgspec.UnsetType = msgspec.UNSET
    event_types: EventTypes | msgspec.UnsetType | None = msgspec.UNSET
    enabled: bool | msgspec.UnsetType = msgspec.UNSET


class RotateIn(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    # How long the old secret keeps signing (both signatures are sent meanwhile).
    overlap_seconds: Annotated[float, msgspec.Meta(ge=0, le=MAX_ROTATION_OVERLAP)] | None = None


class EndpointCreated(msgspec.Struct, frozen=True):
    id: UUID
    url: str
    description: str
    event_types: list[str] | None
    enabled: bool
    created_at: datetime
    secret: str  # shown once; stored sealed


class SecretOut(msgspec.Struct, frozen=True):
    secret: str
    previous_valid_until: datetime


class DeliveryDetail(msgspec.Struct, frozen=True):
    delivery: Delivery
    attempts: list[Attempt]


class RetryQueued(msgspec.Struct, frozen=True):
    delivery_id: UUID
    job_id: str
    status: str = "queued"


def tenant(caller: Caller) -> UUID:
    if caller.tenant_id is None:
        raise errors.TenantRequired()
    return caller.tenant_id


# --- endpoints --------------------------------------------------------------------------


def _sealed_context(endpoint_id: UUID) -> str:
    return f"webhook:{endpoint_id}"


async def create_endpoint(tx: Connection, deps: Deps, caller: Caller, body: EndpointIn) -> EndpointCreated:
    tenant_id = tenant(caller)
    url = await check_url(deps, body.url)
    types = check_event_types(body.event_types)
    await repo.lock_tenant(tx, tenant_id)
    if await repo.count_endpoints(tx, tenant_id) >= deps.settings.webhook_max_endpoints:
        raise errors.WebhookEndpointLimit(f"a tenant may have at most {deps.settings.webhook_max_endpoints}")
    endpoint_id = uuid7()
    secret = signing.new_secret()
    sealed = deps.box.seal(secret, _sealed_context(endpoint_id))
    made = await repo.insert_endpoint(
        tx, endpoint_id, tenant_id, url, body.description, types, body.enabled, sealed
    )
    return EndpointCreated(
        id=made.id,
        url=made.url,
        description=made.description,
        event_types=made.event_types,
        enabled=made.enabled,
        created_at=made.created_at,
        secret=secret,
    )


async def list_endpoints(tx: Connection, caller: Caller) -> list[Endpoint]:
    return await repo.list_endpoints(tx, tenant(caller))


async def get_endpoint(tx: Connection, caller: Caller, endpoint_id: UUID) -> Endpoint:
    found = await repo.get_endpoint(tx, tenant(caller), endpoint_id)
    if found is None:
        raise errors.WebhookEndpointNotFound()
    return found


async def update_endpoint(
    tx: Connection, deps: Deps, caller: Caller, endpoint_id: UUID, patch: EndpointPatch
) -> Endpoint:
    current = await get_endpoint(tx, caller, endpoint_id)
    url = current.url if isinstance(patch.url, msgspec.UnsetType) else await check_url(deps, patch.url)
    types = (
        current.event_types
        if isinstance(patch.event_types, msgspec.UnsetType)
        else check_event_types(patch.event_types)
    )
    description = (
        current.description if isinstance(patch.description, msgspec.UnsetType) else patch.description
    )
    enabled = current.enabled if isinstance(patch.enabled, msgspec.UnsetType) else patch.enabled
    updated = await repo.update_endpoint(tx, current.tenant_id, endpoint_id, url, description, types, enabled)
    if updated is None:
        raise errors.WebhookEndpointNotFound()
    return updated


async def delete_endpoint(tx: Connection, caller: Caller, endpoint_id: UUID) -> None:
    if not await repo.delete_endpoint(tx, tenant(caller), endpoint_id):
        raise errors.WebhookEndpointNotFound()


async def rotate_secret(
    tx: Connection, deps: Deps, caller: Caller, endpoint_id: UUID, body: RotateIn
) -> SecretOut:
    overlap = deps.settings.webhook_rotation_overlap if body.overlap_seconds is None else body.overlap_seconds
    secret = signing.new_secret()
    sealed = deps.box.seal(secret, _sealed_context(endpoint_id))
    if not await repo.rotate_secret(tx, tenant(caller), endpoint_id, sealed, overlap):
        raise errors.WebhookEndpointNotFound()
    until = datetime.fromtimestamp(time.time() + overlap, UTC)
    return SecretOut(secret=secret, previous_valid_until=until)


async def check_url(deps: Deps, url: str) -> str:
    parts = urlsplit(url.strip())
    allowed = ("https",) if deps.settings.is_production else ("https", "http")
    if parts.scheme not in allowed:
        raise errors.WebhookUrlInvalid(f"the URL must use {' or '.join(allowed)}")
    if not parts.hostname:
        raise errors.WebhookUrlInvalid("the URL needs a host")
    if parts.username is not None or parts.password is not None:
        raise errors.WebhookUrlInvalid("credentials in the URL are not allowed")
    if parts.fragment:
        raise errors.WebhookUrlInvalid("the URL must not have a fragment")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise errors.WebhookUrlInvalid("the URL has an invalid port") from None
    policy = policy_of(deps)
    try:
        addresses = await asyncio.wait_for(resolve(parts.hostname, port), 5.0)
    except (OSError, TimeoutError, UnicodeError):
        return parts.geturl()  # not resolvable now: every delivery checks again anyway
    try:
        policy.check(parts.hostname, addresses)
    except AddressBlocked as exc:
        raise errors.WebhookUrlForbidden(str(exc)) from None
    return parts.geturl()


def check_event_types(types: list[str] | None) -> list[str] | None:
    if types is None:
        return None
    known = deliverable_types()
    for name in types:
        if name.endswith(".*"):
            prefix = name[:-1]
            if not any(k.startswith(prefix) for k in known):
                raise errors.UnknownEventType(f"no event type matches {name!r}")
        elif name not in known:
            raise errors.UnknownEventType(f"{name!r} is not an event type")
    return sorted(set(types))


def deliverable_types() -> set[str]:
    return {name for name, spec in CATALOG.items() if spec.stream in DOMAIN_STREAMS}


def matches(event_types: list[str] | None, event_type: str) -> bool:
    if event_types is None:
        return True
    return any(event_type == t or (t.endswith(".*") and event_type.startswith(t[:-1])) for t in event_types)


def policy_of(deps: Deps) -> Policy:
    s = deps.settings
    return Policy.from_settings(s.webhook_allow_private, s.webhook_allowed_networks)


# --- fan-out ----------------------------------------------------------------------------

_json = msgspec.json.Encoder()


def payload(event: Event[Any]) -> bytes:
    """The Standard Webhooks body shape: type, timestamp, data (plus id and tenant_id)."""
    data = msgspec.to_builtins(event.data)
    if isinstance(data, dict):
        data = {k: v for k, v in data.items() if k not in SENSITIVE_FIELDS}
    return _json.encode(
        {
            "id": event.id,
            "type": event.type,
            "timestamp": event.occurred_at,
            "tenant_id": event.tenant_id,
            "data": data,
        }
    )


async def fan_out(tx: Connection, event: Event[Any]) -> int:
    """One delivery per subscribed, enabled endpoint of the event's tenant."""
    if event.tenant_id is None or event.type.endswith(".ping"):
        return 0
    targets = [s for s in await repo.subscriptions(tx, event.tenant_id) if matches(s.event_types, event.type)]
    if not targets:
        return 0
    body = payload(event)
    await repo.insert_deliveries(
        tx, [(uuid7(), event.tenant_id, s.id, event.id, event.type, body) for s in targets]
    )
    return len(targets)


# --- delivery log -----------------------------------------------------------------------


async def list_deliveries(
    tx: Connection,
    caller: Caller,
    endpoint_id: UUID,
    limit: int,
    status: str | None,
    before: datetime | None,
) -> list[Delivery]:
    await get_endpoint(tx, caller, endpoint_id)
    return await repo.list_deliveries(tx, tenant(caller), endpoint_id, limit, status, before)


async def get_delivery(
    tx: Connection, caller: Caller, endpoint_id: UUID, delivery_id: UUID
) -> DeliveryDetail:
    await get_endpoint(tx, caller, endpoint_id)
    found = await repo.get_delivery(tx, tenant(caller), endpoint_id, delivery_id)
    if found is None:
        raise errors.WebhookDeliveryNotFound()
    return DeliveryDetail(found, await repo.attempts_of(tx, tenant(caller), delivery_id))


async def retriable(tx: Connection, caller: Caller, endpoint_id: UUID, delivery_id: UUID) -> Delivery:
    endpoint = await get_endpoint(tx, caller, endpoint_id)
    found = await repo.get_delivery(tx, endpoint.tenant_id, endpoint_id, delivery_id)
    if found is None:
        raise errors.WebhookDeliveryNotFound()
    if not endpoint.enabled:
        raise errors.WebhookEndpointDisabled("enable the endpoint before replaying a delivery")
    return found


# --- attempts ---------------------------------------------------------------------------


def secrets_of(deps: Deps, work: Work) -> list[str]:
    context = _sealed_context(work.endpoint_id)
    found = [deps.box.open(work.secret, context)]
    expires = work.previous_secret_expires_at
    if work.previous_secret and expires is not None and expires > datetime.now(UTC):
        found.append(deps.box.open(work.previous_secret, context))
    return found


async def attempt(deps: Deps, client: WebhookClient, work: Work) -> Outcome:
    msg_id = str(work.event_id)  # the same across retries and replays: receivers dedupe on it
    headers = signing.headers(secrets_of(deps, work), msg_id, int(time.time()), work.payload)
    return await client.post(work.url, work.payload, headers)


async def record(
    tx: Connection, deps: Deps, work: Work, attempt_no: int, outcome: Outcome
) -> tuple[int, float] | None:
    """Store an attempt (`attempt_no` 0 = a manual replay); returns the next (attempt, delay) to queue."""
    trigger = "manual" if attempt_no == 0 else "scheduled"
    await repo.record_attempt(
        tx,
        work.id,
        work.tenant_id,
        trigger,
        outcome.status_code,
        outcome.body,
        outcome.error,
        outcome.duration_ms,
    )
    if outcome.ok:
        assert outcome.status_code is not None
        await repo.succeeded(tx, work.id, attempt_no or None, outcome.status_code)
        await repo.endpoint_succeeded(tx, work.endpoint_id)
        return None
    error = outcome.error or f"HTTP {outcome.status_code}"
    follow: tuple[int, float] | None = None
    if attempt_no == 0:
        await repo.manual_failed(tx, work.id, outcome.status_code, error)
    else:
        schedule = deps.settings.webhook_schedule
        retry_in = schedule[attempt_no] if attempt_no < len(schedule) else None
        fresh = await repo.scheduled_failed(tx, work.id, attempt_no, outcome.status_code, error, retry_in)
        if fresh and retry_in is not None:
            follow = (attempt_no + 1, retry_in)
    failing_for = await repo.endpoint_failed(tx, work.endpoint_id)
    if failing_for >= deps.settings.webhook_disable_after:
        await _disable(tx, deps, work, failing_for)
    return follow


async def _disable(tx: Connection, deps: Deps, work: Work, failing_for: float) -> None:
    reason = f"every delivery failed for {failing_for:.0f} seconds"
    endpoint = await repo.disable_failing(tx, work.endpoint_id, reason)
    if endpoint is None:
        return  # already disabled by another attempt
    log.warning("webhook endpoint %s of tenant %s disabled: %s", endpoint.id, endpoint.tenant_id, reason)
    data = WebhookEndpointDisabled(endpoint_id=endpoint.id, url=endpoint.url, reason=reason)
    event = new_event(data, tenant_id=endpoint.tenant_id)
    await add_event(tx, event)
    await notifications.webhook_disabled(tx, deps, event, endpoint.url, failing_for)


async def give_up(tx: Connection, work: Work, reason: str) -> None:
    await repo.give_up(tx, work.id, reason)
