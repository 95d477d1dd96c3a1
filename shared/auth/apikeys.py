"""API keys: `cc_<env>_<prefix>_<secret>`; only the prefix and a SHA-256 of the secret are kept."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from typing import Literal

KeyEnv = Literal["live", "test"]
ENVS: tuple[KeyEnv, ...] = ("live", "test")
_FORMAT = re.compile(r"^cc_(live|test)_([a-z0-9]{12})_([A-Za-z0-9_-]{43})$")


@dataclass(frozen=True)
class NewKey:
    full: str  # shown to the user once, never stored
    prefix: str
    secret_hash: str


@dataclass(frozen=True)
class PresentedKey:
    env: KeyEnv
    prefix: str
    secret_hash: str


def hash_secret(secret: str) -> str:
    # The secret has 256 bits of entropy, so a fast hash is safe here (no brute force to slow).
    return hashlib.sha256(secret.encode()).hexdigest()


def generate(env: KeyEnv) -> NewKey:
    prefix = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    return NewKey(f"cc_{env}_{prefix}_{secret}", prefix, hash_secret(secret))


def parse(presented: str) -> PresentedKey | None:
    match = _FORMAT.match(presented)
    if match is None:
        return None
    env: KeyEnv = "live" if match.group(1) == "live" else "test"
    return PresentedKey(env, match.group(2), hash_secret(match.group(3)))


def same_hash(stored: str, presented: str) -> bool:
    return hmac.compare_digest(stored.encode(), presented.encode())
