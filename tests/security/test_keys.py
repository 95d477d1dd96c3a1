"""API keys through the real gateways: revoked, expired, wrong scope, truncated or guessed keys are
refused; nothing outside the key holder ever sees the secret, only its SHA-256.

Constant time: neither side compares the secret itself. The gateway parses the key, hashes the
secret and looks up `prefix:sha256:env` (its caches and Redis are keyed by the hash), and identity
compares hashes with hmac.compare_digest, against a dummy hash when the prefix is unknown. A timing
measurement would be noise on a shared machine, so the test checks these structural facts."""

from __future__ import annotations

import hashlib
import time
from datetime import UTC, datetime, timedelta

import redis

from services.identity.schemas import VerifyKeyIn
from tests.gateway.conftest import Stack
from tests.gateway.support import bearer, client, poll
from tests.security.conftest import api_key, register


def _status(base: str, key: str, path: str = "/echo") -> tuple[int, str]:
    with client(base) as c:
        resp = c.get(path, headers=bearer(key))
    code = resp.json().get("code", "") if resp.status_code >= 400 else ""
    return resp.status_code, code


def test_bad_keys_are_refused(real: Stack, gateway: str) -> None:
    owner = register(gateway, "keys")
    good = api_key(gateway, owner, scopes=["echo:read"])["key"]
    unscoped = api_key(gateway, owner, scopes=["reports:read"])["key"]
    prefix = good.rsplit("_", 1)[0]
    cases = {
        "prefix_only": prefix,
        "prefix_and_underscore": prefix + "_",
        "wrong_secret": prefix + "_" + "A" * 43,
        "secret_one_char_off": good[:-1] + ("A" if good[-1] != "A" else "B"),
        "truncated": good[:-5],
        "other_env_label": good.replace("cc_live_", "cc_test_", 1).replace("cc_test_", "cc_live_", 1)
        if good.startswith("cc_test_")
        else good.replace("cc_live_", "cc_test_", 1),
    }
    tried = 0
    for base in real.gateways:
        assert _status(base, good) == (200, "")
        for name, value in cases.items():
            status, code = _status(base, value)
            assert status == 401, (name, status)
            assert code in ("api_key_invalid", "token_invalid"), (name, code)
            tried += 1
        assert _status(base, unscoped) == (403, "insufficient_scope")
    print(f"\n[security] api keys: {tried} forged/truncated keys refused; scope enforced")


def test_expired_and_revoked_keys(real: Stack, gateway: str) -> None:
    owner = register(gateway, "keylife")
    soon = (datetime.now(UTC) + timedelta(seconds=3)).isoformat()
    expiring = api_key(gateway, owner, scopes=["echo:read"], expires_at=soon)["key"]
    doomed = api_key(gateway, owner, scopes=["echo:read"])
    assert _status(gateway, expiring)[0] == 200
    assert _status(gateway, doomed["key"])[0] == 200
    with client(gateway, ip=owner.ip) as c:
        assert c.delete(f"/api-keys/{doomed['id']}", headers=owner.headers()).status_code == 204
    for base in real.gateways:
        poll(lambda base=base: _status(base, doomed["key"]), until=lambda s: s[0] == 401, timeout=10)
        assert _status(base, doomed["key"])[0] == 401
    time.sleep(3.5)
    for base in real.gateways:
        assert _status(base, expiring)[0] == 401


def test_only_the_hash_of_the_secret_is_kept(real: Stack, gateway: str) -> None:
    owner = register(gateway, "keyhash")
    key = api_key(gateway, owner, scopes=["echo:read"])["key"]
    prefix, secret = key.split("_")[2], key.split("_", 3)[3]
    digest = hashlib.sha256(secret.encode()).hexdigest()
    assert _status(gateway, key)[0] == 200
    rds = redis.Redis.from_url(real.redis_url)
    try:
        cached = [k.decode() for k in rds.scan_iter(f"gw:apikey:{prefix}:*")]
        assert cached == [f"gw:apikey:{prefix}:{digest}:{key.split('_')[1]}"]
        for name in rds.scan_iter("*"):  # the whole Redis: no key name or string value holds the secret
            assert secret not in name.decode(errors="replace")
            if rds.type(name) == b"string":
                assert secret.encode() not in (rds.get(name) or b"")
    finally:
        rds.close()
    # Identity's verify endpoint itself takes only the env label, the prefix and the hash.
    assert VerifyKeyIn.__struct_fields__ == ("env", "prefix", "secret_hash")
