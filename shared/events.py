"""The event catalog: the envelope and every payload the platform publishes.

Rules: a payload type is never changed in place. New fields get defaults (old events still
decode); an incompatible change is a new `version` of the type, and consumers that only
know older versions dead-letter it rather than guess.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar, Generic, Literal, TypeVar
from uuid import UUID

import msgspec

from shared.ids import uuid7

IDENTITY_STREAM = "identity.events"
BILLING_STREAM = "billing.events"
NOTIFIER_STREAM = "notifier.events"
USAGE_STREAM = "usage.events"
GATEWAY_REQUESTS_STREAM = "gateway.requests"
DOMAIN_STREAMS = (IDENTITY_STREAM, BILLING_STREAM, NOTIFIER_STREAM, USAGE_STREAM)

ActorKind = Literal["user", "api_key", "system", "stripe", "operator"]
Role = Literal["owner", "admin", "member"]


class Actor(msgspec.Struct, frozen=True, kw_only=True):
    kind: ActorKind
    id: str | None = None
    ip: str | None = None


SYSTEM = Actor(kind="system")


class Payload(msgspec.Struct, frozen=True, kw_only=True):
    """Base of event data. Subclasses set TYPE (and VERSION when it changes)."""

    TYPE: ClassVar[str] = ""
    VERSION: ClassVar[int] = 1


P = TypeVar("P", bound=Payload)


class Event(msgspec.Struct, Generic[P], frozen=True, kw_only=True):
    id: UUID
    type: str
    version: int
    occurred_at: datetime
    tenant_id: UUID | None
    actor: Actor
    correlation_id: str | None = None
    data: P


class _WireEvent(msgspec.Struct, frozen=True, kw_only=True):
    """The envelope with its payload left undecoded, to pick the payload type first."""

    id: UUID
    type: str
    version: int
    occurred_at: datetime
    tenant_id: UUID | None
    actor: Actor
    correlation_id: str | None = None
    data: msgspec.Raw


@dataclass(frozen=True)
class EventSpec:
    payload: type[Payload]
    stream: str


CATALOG: dict[str, EventSpec] = {}


def register(stream: str) -> Any:
    def add(cls: type[P]) -> type[P]:
        if not cls.TYPE or cls.TYPE in CATALOG:
            raise ValueError(f"event type missing or registered twice: {cls.__name__} {cls.TYPE!r}")
        CATALOG[cls.TYPE] = EventSpec(cls, stream)
        return cls

    return add


def new_event(
    data: P, *, tenant_id: UUID | None, actor: Actor = SYSTEM, correlation_id: str | None = None
) -> Event[P]:
    return Event(
        id=uuid7(),
        type=data.TYPE,
        version=data.VERSION,
        occurred_at=datetime.now(UTC),
        tenant_id=tenant_id,
        actor=actor,
        correlation_id=correlation_id,
        data=data,
    )


def stream_of(event: Event[Any]) -> str:
    return CATALOG[event.type].stream


class UndecodableEvent(Exception):
    """Raised with a stable `reason` that goes with the entry to the dead-letter stream."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


_encoder = msgspec.json.Encoder()
_wire_decoder = msgspec.json.Decoder(_WireEvent)


def encode(event: Event[Any]) -> bytes:
    return _encoder.encode(event)


def decode(raw: bytes) -> Event[Payload]:
    try:
        wire = _wire_decoder.decode(raw)
    except msgspec.DecodeError as exc:
        raise UndecodableEvent("undecodable", str(exc)) from None
    spec = CATALOG.get(wire.type)
    if spec is None:
        raise UndecodableEvent("unknown_type", wire.type)
    if wire.version > spec.payload.VERSION:
        raise UndecodableEvent("newer_version", f"{wire.type} v{wire.version} > v{spec.payload.VERSION}")
    try:
        data = msgspec.json.decode(wire.data, type=spec.payload)
    except msgspec.DecodeError as exc:
        raise UndecodableEvent("invalid_payload", f"{wire.type}: {exc}") from None
    return Event(
        id=wire.id,
        type=wire.type,
        version=wire.version,
        occurred_at=wire.occurred_at,
        tenant_id=wire.tenant_id,
        actor=wire.actor,
        correlation_id=wire.correlation_id,
        data=data,
    )


# --- identity -------------------------------------------------------------------------


@register(IDENTITY_STREAM)
class TenantCreated(Payload, frozen=True, kw_only=True):
    TYPE = "identity.tenant.created"
    name: str
    plan: str
    owner_user_id: UUID


@register(IDENTITY_STREAM)
class UserRegistered(Payload, frozen=True, kw_only=True):
    TYPE = "identity.user.registered"
    user_id: UUID
    email: str
    first_name: str | None = None
    tenant_name: str = ""
    role: Role = "owner"


@register(IDENTITY_STREAM)
class UserInvited(Payload, frozen=True, kw_only=True):
    TYPE = "identity.user.invited"
    invitation_id: UUID
    email: str
    role: Role
    token: str  # only what the notifier needs to build the link; stored hashed by identity
    tenant_name: str = ""
    invited_by: UUID | None = None


@register(IDENTITY_STREAM)
class EmailVerificationRequested(Payload, frozen=True, kw_only=True):
    TYPE = "identity.email_verification.requested"
    user_id: UUID
    email: str
    token: str
    tenant_name: str = ""


@register(IDENTITY_STREAM)
class PasswordResetRequested(Payload, frozen=True, kw_only=True):
    TYPE = "identity.password_reset.requested"
    user_id: UUID
    email: str
    token: str
    expires_at: datetime


@register(IDENTITY_STREAM)
class PasswordChanged(Payload, frozen=True, kw_only=True):
    TYPE = "identity.password.changed"
    user_id: UUID
    email: str


@register(IDENTITY_STREAM)
class SessionRevoked(Payload, frozen=True, kw_only=True):
    TYPE = "identity.session.revoked"
    user_id: UUID
    family_id: UUID | None = None
    jti: str | None = None
    reason: str = "logout"


@register(IDENTITY_STREAM)
class RefreshReuseDetected(Payload, frozen=True, kw_only=True):
    TYPE = "identity.refresh_reuse.detected"
    user_id: UUID
    family_id: UUID


@register(IDENTITY_STREAM)
class ApiKeyCreated(Payload, frozen=True, kw_only=True):
    TYPE = "identity.api_key.created"
    key_id: UUID
    prefix: str
    name: str
    scopes: tuple[str, ...] = ()


@register(IDENTITY_STREAM)
class ApiKeyRevoked(Payload, frozen=True, kw_only=True):
    TYPE = "identity.api_key.revoked"
    key_id: UUID
    prefix: str
    key_hash: str = ""  # lets gateways drop their cached verification at once


@register(IDENTITY_STREAM)
class UserRoleChanged(Payload, frozen=True, kw_only=True):
    TYPE = "identity.user.role_changed"
    user_id: UUID
    old_role: Role
    new_role: Role


@register(IDENTITY_STREAM)
class UserRemoved(Payload, frozen=True, kw_only=True):
    TYPE = "identity.user.removed"
    user_id: UUID
    email: str


@register(IDENTITY_STREAM)
class TenantPlanChanged(Payload, frozen=True, kw_only=True):
    TYPE = "identity.tenant.plan_changed"
    old_plan: str
    new_plan: str


@register(IDENTITY_STREAM)
class TenantUpdated(Payload, frozen=True, kw_only=True):
    TYPE = "identity.tenant.updated"
    name: str


@register(IDENTITY_STREAM)
class EmailVerified(Payload, frozen=True, kw_only=True):
    TYPE = "identity.email.verified"
    user_id: UUID
    email: str


@register(IDENTITY_STREAM)
class InvitationRevoked(Payload, frozen=True, kw_only=True):
    TYPE = "identity.invitation.revoked"
    invitation_id: UUID
    email: str


@register(IDENTITY_STREAM)
class SessionCreated(Payload, frozen=True, kw_only=True):
    """A login (password, registration, accepted invitation or password change) began."""

    TYPE = "identity.session.created"
    user_id: UUID
    family_id: UUID
    method: str = "password"


@register(IDENTITY_STREAM)
class SessionRefreshed(Payload, frozen=True, kw_only=True):
    TYPE = "identity.session.refreshed"
    user_id: UUID
    family_id: UUID


# --- billing --------------------------------------------------------------------------


@register(BILLING_STREAM)
class CheckoutCompleted(Payload, frozen=True, kw_only=True):
    TYPE = "billing.checkout.completed"
    session_id: str
    plan: str
    customer_id: str


class _SubscriptionState(Payload, frozen=True, kw_only=True):
    subscription_id: str
    plan: str
    status: str
    current_period_end: datetime | None = None
    cancel_at_period_end: bool = False


@register(BILLING_STREAM)
class SubscriptionActivated(_SubscriptionState, frozen=True, kw_only=True):
    TYPE = "billing.subscription.activated"


@register(BILLING_STREAM)
class SubscriptionChanged(_SubscriptionState, frozen=True, kw_only=True):
    TYPE = "billing.subscription.changed"
    previous_plan: str = ""


@register(BILLING_STREAM)
class SubscriptionCanceled(_SubscriptionState, frozen=True, kw_only=True):
    TYPE = "billing.subscription.canceled"


class _Payment(Payload, frozen=True, kw_only=True):
    invoice_id: str
    amount_cents: int
    currency: str
    hosted_invoice_url: str | None = None


@register(BILLING_STREAM)
class PaymentSucceeded(_Payment, frozen=True, kw_only=True):
    TYPE = "billing.payment.succeeded"


@register(BILLING_STREAM)
class PaymentFailed(_Payment, frozen=True, kw_only=True):
    TYPE = "billing.payment.failed"
    attempt_count: int = 1
    next_attempt_at: datetime | None = None


@register(BILLING_STREAM)
class TrialEnding(Payload, frozen=True, kw_only=True):
    TYPE = "billing.trial.ending"
    subscription_id: str
    trial_end: datetime


# --- notifier -------------------------------------------------------------------------


@register(NOTIFIER_STREAM)
class EmailSent(Payload, frozen=True, kw_only=True):
    TYPE = "notifier.email.sent"
    template: str
    to: str
    source_event_id: UUID


@register(NOTIFIER_STREAM)
class EmailFailed(Payload, frozen=True, kw_only=True):
    TYPE = "notifier.email.failed"
    template: str
    to: str
    source_event_id: UUID
    permanent: bool
    reason: str


@register(NOTIFIER_STREAM)
class WebhookEndpointDisabled(Payload, frozen=True, kw_only=True):
    TYPE = "notifier.webhook_endpoint.disabled"
    endpoint_id: UUID
    url: str
    reason: str


# --- usage ----------------------------------------------------------------------------


@register(USAGE_STREAM)
class ApiKeysUsed(Payload, frozen=True, kw_only=True):
    """Batched last-used times, so identity never updates keys on the request path."""

    TYPE = "usage.api_keys.used"
    last_used: dict[str, datetime]  # key id -> latest use


@register(USAGE_STREAM)
class QuotaExceeded(Payload, frozen=True, kw_only=True):
    TYPE = "usage.quota.exceeded"
    month: str
    limit: int
    used: int


# --- gateway --------------------------------------------------------------------------


class UsageRecord(msgspec.Struct, frozen=True, kw_only=True, array_like=True):
    """One request through the gateway; array_like keeps a batch of thousands compact."""

    request_id: str
    at: datetime
    tenant_id: UUID | None
    user_id: UUID | None
    api_key_id: UUID | None
    method: str
    route: str  # the upstream's route prefix or template, never the raw path (cardinality)
    status: int
    latency_ms: float
    bytes_in: int
    bytes_out: int
    ip: str | None = None
    # True when the gateway counted this call toward the tenant's monthly quota (quota_key);
    # usage rebuilds the counter from the records that have it.
    metered: bool = False


@register(GATEWAY_REQUESTS_STREAM)
class RequestBatch(Payload, frozen=True, kw_only=True):
    """Many usage records in one stream entry: the gateway never XADDs per request."""

    TYPE = "gateway.requests.batch"
    records: list[UsageRecord]


# --- platform (smoke checks of the bus itself) ----------------------------------------


@register(IDENTITY_STREAM)
class IdentityPing(Payload, frozen=True, kw_only=True):
    TYPE = "identity.ping"
    note: str = ""


@register(BILLING_STREAM)
class BillingPing(Payload, frozen=True, kw_only=True):
    TYPE = "billing.ping"
    note: str = ""
