"""Key material: generation (`catalytic keys generate`) and loading from PEM text."""

from __future__ import annotations

import base64
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes, PublicKeyTypes

FILES = {
    "jwt_private.pem": "signs access tokens (identity only)",
    "jwt_public.pem": "verifies access tokens (published as JWKS)",
    "assertion_private.pem": "signs the gateway's caller assertions (gateway only)",
    "assertion_public.pem": "verifies caller assertions (every upstream service)",
    "secrets.key": "encrypts secrets at rest: webhook signing secrets, SMTP passwords",
    "database.key": "encrypts sensitive columns in database backups and exports",
}


class KeyFileExists(Exception):
    pass


@dataclass(frozen=True)
class GeneratedKeys:
    directory: Path
    files: dict[str, str]


def generate(env: str, directory: Path, *, force: bool = False) -> GeneratedKeys:
    """Write a full key set for `env` with mode 600; refuse to overwrite unless forced."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    existing = [name for name in FILES if (directory / name).exists()]
    if existing and not force:
        raise KeyFileExists(f"{directory} already holds {', '.join(existing)}; use --force to replace")
    jwt_key = rsa.generate_private_key(public_exponent=65537, key_size=3072)
    assertion_key = ed25519.Ed25519PrivateKey.generate()
    contents = {
        "jwt_private.pem": _private_pem(jwt_key),
        "jwt_public.pem": _public_pem(jwt_key.public_key()),
        "assertion_private.pem": _private_pem(assertion_key),
        "assertion_public.pem": _public_pem(assertion_key.public_key()),
        # The env name is kept in the key file so production can refuse a development key.
        "secrets.key": f"{env}:{base64.urlsafe_b64encode(os.urandom(32)).decode()}\n".encode(),
        "database.key": f"{env}:{base64.urlsafe_b64encode(os.urandom(32)).decode()}\n".encode(),
    }
    for name, data in contents.items():
        path = directory / name
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        path.chmod(0o600)
    return GeneratedKeys(directory, dict(FILES))


def _private_pem(key: PrivateKeyTypes) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _public_pem(key: PublicKeyTypes) -> bytes:
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def load_private(pem: str) -> PrivateKeyTypes:
    return serialization.load_pem_private_key(pem.encode(), password=None)


def load_public(pem: str) -> PublicKeyTypes:
    return serialization.load_pem_public_key(pem.encode())


def symmetric_key(text: str) -> tuple[str, bytes]:
    """Parse `env:base64` from secrets.key; returns (env, 32 raw bytes)."""
    env, _, encoded = text.strip().rpartition(":")
    raw = base64.urlsafe_b64decode(encoded)
    if len(raw) != 32:
        raise ValueError("a symmetric key must be 32 bytes")
    return env, raw


def fingerprint(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]
