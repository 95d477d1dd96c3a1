"""Verification of Stripe's webhook signatures, with the SDK's own verifier.

`stripe.WebhookSignature.verify_header` is the check `stripe.Webhook.construct_event` runs
(HMAC-SHA256 of "t.body" compared in constant time, timestamp tolerance); construct_event then
builds the SDK's object tree of the whole event, which billing never reads (the worker decodes
the stored body itself) and which costs about twenty times the check (1.3 ms against 0.06 ms for
a 3 KB event). So ingress verifies with the SDK and decodes only the envelope it stores.
"""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec
import stripe

from services.billing.errors import InvalidSignature, MalformedEvent, SignatureExpired, WebhooksNotConfigured


class _Envelope(msgspec.Struct, frozen=True):
    id: str
    type: str
    created: int
    livemode: bool = False
    object: str = "event"


_decoder = msgspec.json.Decoder(_Envelope)


class VerifiedEvent(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    type: str
    created: datetime
    livemode: bool


def verify(body: bytes, signature: str | None, secrets: tuple[str, ...], tolerance: int) -> VerifiedEvent:
    """The event in `body` if `signature` is Stripe's for one of `secrets`, else raise.

    Several secrets are tried while one is being rolled (Stripe signs with both for a while);
    a signature that is right but too old is told apart, so clock skew is easy to see."""
    if not secrets:
        raise WebhooksNotConfigured()
    if not signature:
        raise InvalidSignature("no Stripe-Signature header")
    if not any(_signed_by(body, signature, secret, tolerance) for secret in secrets):
        if any(_signed_by(body, signature, secret, None) for secret in secrets):
            raise SignatureExpired(f"the signature is older than {tolerance} seconds")
        raise InvalidSignature()
    try:
        event = _decoder.decode(body)
    except msgspec.DecodeError as exc:
        raise MalformedEvent("the signed body is not a Stripe event") from exc
    if not event.id.startswith("evt_") or not event.type or event.object != "event":
        raise MalformedEvent("the event has no Stripe event id or type")
    created = datetime.fromtimestamp(event.created, UTC)
    return VerifiedEvent(id=event.id, type=event.type, created=created, livemode=event.livemode)


def _signed_by(body: bytes, signature: str, secret: str, tolerance: int | None) -> bool:
    try:
        return bool(stripe.WebhookSignature.verify_header(body, signature, secret, tolerance))
    except (stripe.SignatureVerificationError, ValueError):  # ValueError: a body that is not UTF-8
        return False
