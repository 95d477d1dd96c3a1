"""Secrets at rest (webhook signing secrets, SMTP passwords): AES-256-GCM with the secrets key."""

from __future__ import annotations

import base64
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from shared.auth.keys import symmetric_key

_VERSION = b"v1"


class SecretBox:
    def __init__(self, key_text: str) -> None:
        _, raw = symmetric_key(key_text)
        self._aead = AESGCM(raw)

    def seal(self, plaintext: str, context: str = "") -> str:
        """Encrypt; `context` (e.g. the row id) is bound in so a value cannot be moved to another row."""
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, plaintext.encode(), context.encode())
        return (_VERSION + b"." + base64.urlsafe_b64encode(nonce + sealed)).decode()

    def open(self, token: str, context: str = "") -> str:
        version, _, body = token.encode().partition(b".")
        if version != _VERSION:
            raise ValueError("unknown secret format")
        raw = base64.urlsafe_b64decode(body)
        try:
            return self._aead.decrypt(raw[:12], raw[12:], context.encode()).decode()
        except InvalidTag:
            raise ValueError("secret cannot be decrypted with this key or context") from None
