"""The gateway's signed statement of who is calling, sent to upstreams instead of bare headers.

Format: base64url(JSON claims) "." base64url(Ed25519 signature). Upstreams hold only the
public key, so a compromised upstream cannot mint assertions for the others. Short-lived and
bound to one upstream (`aud`), so a captured one is of little use elsewhere or later.
"""

from __future__ import annotations

import base64
import binascii
import time
from typing import Literal
from uuid import UUID

import msgspec
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ed25519

from shared.auth.errors import AssertionInvalid
from shared.auth.keys import load_private, load_public

HEADER = "x-catalytic-assertion"
CallerKind = Literal["user", "api_key", "anonymous", "service"]
TTL_SECONDS = 30


class Caller(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    kind: CallerKind
    aud: str  # the upstream service this assertion is for
    exp: float
    request_id: str = ""
    tenant_id: UUID | None = None
    user_id: UUID | None = None
    api_key_id: UUID | None = None
    role: str | None = None
    plan: str | None = None
    scopes: tuple[str, ...] = ()
    ip: str | None = None
    jti: str | None = None  # the access token's id, so logout can revoke it

    @property
    def is_authenticated(self) -> bool:
        return self.kind in ("user", "api_key") and self.tenant_id is not None


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(Caller)


def _b64(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def _unb64(data: bytes) -> bytes:
    return base64.urlsafe_b64decode(data + b"=" * (-len(data) % 4))


class AssertionSigner:
    def __init__(self, private_pem: str) -> None:
        key = load_private(private_pem)
        if not isinstance(key, ed25519.Ed25519PrivateKey):
            raise TypeError("the assertion key must be Ed25519")
        self._key = key

    def sign(self, caller: Caller) -> str:
        body = _b64(_encoder.encode(caller))
        return (body + b"." + _b64(self._key.sign(body))).decode()


class AssertionVerifier:
    def __init__(self, public_pem: str, audience: str) -> None:
        key = load_public(public_pem)
        if not isinstance(key, ed25519.Ed25519PublicKey):
            raise TypeError("the assertion key must be Ed25519")
        self._key = key
        self.audience = audience

    def verify(self, token: str, now: float | None = None) -> Caller:
        body, _, sig = token.encode().partition(b".")
        try:
            self._key.verify(_unb64(sig), body)
            caller = _decoder.decode(_unb64(body))
        except (InvalidSignature, binascii.Error, ValueError, msgspec.DecodeError):
            raise AssertionInvalid() from None
        if caller.aud != self.audience:
            raise AssertionInvalid("assertion was issued for another service")
        if caller.exp < (time.time() if now is None else now):
            raise AssertionInvalid("assertion expired")
        return caller
