"""Access tokens: RS256 (or EdDSA) JWTs with a `kid`; verification allow-lists algorithms.

The verifier picks the key by `kid` and the algorithm from the key's own type, never from
the token: `alg: none` and HS256-signed-with-the-public-key cannot pass.
"""

from __future__ import annotations

import base64
import hashlib
import time
import uuid
from typing import Any, Literal

import jwt
import msgspec
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from jwt.algorithms import OKPAlgorithm, RSAAlgorithm

from shared.auth.errors import TokenExpired, TokenInvalid
from shared.auth.keys import load_private, load_public

Alg = Literal["RS256", "EdDSA"]
ALLOWED: frozenset[str] = frozenset({"RS256", "EdDSA"})


class AccessClaims(msgspec.Struct, frozen=True, kw_only=True):
    sub: str
    tenant_id: str
    role: str
    plan: str
    jti: str
    iss: str
    aud: str
    exp: int
    iat: int
    nbf: int | None = None


def _alg_of(key: Any) -> Alg:
    if isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey):
        return "RS256"
    if isinstance(key, ed25519.Ed25519PrivateKey | ed25519.Ed25519PublicKey):
        return "EdDSA"
    raise TypeError(f"unsupported key type {type(key).__name__}")


def _jwk(public_key: Any) -> dict[str, Any]:
    alg = _alg_of(public_key)
    jwk: dict[str, Any] = (
        RSAAlgorithm.to_jwk(public_key, as_dict=True)
        if alg == "RS256"
        else OKPAlgorithm.to_jwk(public_key, as_dict=True)
    )
    # RFC 7638 thumbprint as kid: stable for the key, no registry of names needed.
    members = {k: jwk[k] for k in sorted(("e", "kty", "n") if alg == "RS256" else ("crv", "kty", "x"))}
    digest = hashlib.sha256(msgspec.json.encode(members)).digest()
    jwk.update(kid=base64.urlsafe_b64encode(digest).rstrip(b"=").decode(), alg=alg, use="sig")
    return jwk


class TokenSigner:
    def __init__(
        self,
        private_pem: str,
        *,
        issuer: str,
        audience: str,
        ttl_seconds: int = 900,
        extra_public_pems: tuple[str, ...] = (),
    ) -> None:
        key = load_private(private_pem)
        if not isinstance(key, rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey):
            raise TypeError("access tokens are signed with an RSA or Ed25519 key")
        self._key = key
        self.alg = _alg_of(key)
        own = _jwk(key.public_key())
        self.kid: str = own["kid"]
        # Keys being rotated out stay in the JWKS until tokens signed with them expire.
        self._jwks = [own, *(_jwk(load_public(p)) for p in extra_public_pems)]
        self.issuer = issuer
        self.audience = audience
        self.ttl = ttl_seconds

    def issue(self, *, user_id: str, tenant_id: str, role: str, plan: str) -> tuple[str, AccessClaims]:
        now = int(time.time())
        claims = AccessClaims(
            sub=user_id,
            tenant_id=tenant_id,
            role=role,
            plan=plan,
            jti=uuid.uuid4().hex,
            iss=self.issuer,
            aud=self.audience,
            iat=now,
            nbf=now,
            exp=now + self.ttl,
        )
        token = jwt.encode(
            msgspec.to_builtins(claims),
            self._key,
            algorithm=self.alg,
            headers={"kid": self.kid},
        )
        return token, claims

    def jwks(self) -> dict[str, list[dict[str, Any]]]:
        return {"keys": list(self._jwks)}


class TokenVerifier:
    def __init__(self, jwks: dict[str, Any], *, issuer: str, audience: str, leeway: int = 5) -> None:
        self._keys: dict[str, tuple[Any, Alg]] = {}
        for jwk in jwks.get("keys", ()):
            if jwk.get("alg") not in ALLOWED or "kid" not in jwk:
                continue
            key = jwt.PyJWK(jwk).key
            self._keys[jwk["kid"]] = (key, _alg_of(key))
        self.issuer = issuer
        self.audience = audience
        self.leeway = leeway

    def knows(self, kid: str) -> bool:
        return kid in self._keys

    @staticmethod
    def kid_of(token: str) -> str:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise TokenInvalid("malformed token") from None
        kid = header.get("kid")
        if not isinstance(kid, str) or header.get("alg") not in ALLOWED:
            raise TokenInvalid("token algorithm or key id not accepted")
        return kid

    def verify(self, token: str) -> AccessClaims:
        kid = self.kid_of(token)
        found = self._keys.get(kid)
        if found is None:
            raise TokenInvalid("unknown signing key")
        key, alg = found
        try:
            payload = jwt.decode(
                token,
                key,
                algorithms=[alg],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
                options={"require": ["exp", "iat", "iss", "aud", "sub", "jti"]},
            )
        except jwt.ExpiredSignatureError:
            raise TokenExpired() from None
        except jwt.PyJWTError as exc:
            raise TokenInvalid(str(exc)) from None
        try:
            return msgspec.convert(payload, AccessClaims)
        except msgspec.ValidationError as exc:
            raise TokenInvalid(f"claims: {exc}") from None
