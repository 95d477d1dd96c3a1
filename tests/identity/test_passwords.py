"""The password hasher and settings on their own: OWASP parameters, the cap, production refusals."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from services.identity.app import signer
from services.identity.errors import PasswordHashBusy
from services.identity.service.passwords import PasswordHasher
from services.identity.settings import IdentitySettings
from shared.auth import keys
from shared.auth.tokens import TokenVerifier
from shared.settings import SettingsError, load_settings


async def test_owasp_profile_hashes_with_argon2id_19mib_t2_p1() -> None:
    hasher = PasswordHasher("owasp", concurrency=2, queue_limit=8)
    try:
        await hasher.start()
        stored = await hasher.hash("Velvet-Orbit-Lantern-42")
        assert stored.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
        assert await hasher.verify(stored, "Velvet-Orbit-Lantern-42")
        assert not await hasher.verify(stored, "velvet-orbit-lantern-42")
        assert not await hasher.verify(None, "anything")  # the dummy hash: work done, never a match
        assert not await hasher.verify("not a hash", "anything")
        cheap = PasswordHasher("test", concurrency=1, queue_limit=1)
        weak = await cheap.hash("Velvet-Orbit-Lantern-42")
        cheap.close()
        assert hasher.needs_rehash(weak)  # logins upgrade hashes made with weaker parameters
        assert not hasher.needs_rehash(stored)
    finally:
        hasher.close()


async def test_a_full_queue_answers_busy_instead_of_piling_up() -> None:
    hasher = PasswordHasher("owasp", concurrency=1, queue_limit=1)
    try:
        results = await asyncio.gather(
            *(hasher.hash(f"Password-{i}-xyz") for i in range(4)), return_exceptions=True
        )
    finally:
        hasher.close()
    busy = [r for r in results if isinstance(r, PasswordHashBusy)]
    assert len(busy) == 2
    assert busy[0].status == 503 and busy[0].headers["Retry-After"] == "1"
    assert all(isinstance(r, str) for r in results if r not in busy)


def test_production_refuses_the_test_profile_and_the_api_needs_a_signing_key() -> None:
    env = {"APP_ENV": "production", "IDENTITY_PASSWORD_HASH_PROFILE": "test", "JWT_PRIVATE_KEY": "x"}
    with pytest.raises(SettingsError, match="PASSWORD_HASH_PROFILE"):
        load_settings(IdentitySettings, "IDENTITY", env)
    with pytest.raises(SettingsError, match="JWT_PRIVATE_KEY"):
        signer(load_settings(IdentitySettings, "IDENTITY", {"APP_ENV": "production"}))
    ok = load_settings(IdentitySettings, "IDENTITY", {"APP_ENV": "production", "JWT_PRIVATE_KEY": "x"})
    assert ok.password_hash_profile == "owasp"
    assert (ok.access_token_ttl_seconds, ok.refresh_token_ttl_seconds) == (900, 7 * 86_400)


def test_keys_being_rotated_out_stay_in_the_jwks(tmp_path: Path) -> None:
    new, old = tmp_path / "new", tmp_path / "old"
    keys.generate("test", new)
    keys.generate("test", old)
    env = {
        "JWT_PRIVATE_KEY_FILE": str(new / "jwt_private.pem"),
        "JWT_PREVIOUS_PUBLIC_KEYS": (old / "jwt_public.pem").read_text(),
    }
    made = signer(load_settings(IdentitySettings, "IDENTITY", env))
    published = made.jwks()["keys"]
    assert len(published) == 2
    assert published[0]["kid"] == made.kid
    token, _ = made.issue(user_id="u", tenant_id="t", role="owner", plan="free")
    verifier = TokenVerifier(made.jwks(), issuer="catalytic-identity", audience="catalytic-api")
    assert verifier.verify(token).sub == "u"
