"""API keys: the full key shown once, only a hash at rest, listing, revocation, the gateway's
verification endpoint, the per-plan limit."""

from __future__ import annotations

import hashlib
from pathlib import Path

from shared.auth import apikeys
from tests.conftest import TEST_ROOT
from tests.identity.conftest import Account, Identity, key_headers
from tests.support import anonymous, as_service


def _verify(identity: Identity, full_key: str, headers: dict[str, str] | None = None) -> object:
    presented = apikeys.parse(full_key)
    assert presented is not None
    body = {"env": presented.env, "prefix": presented.prefix, "secret_hash": presented.secret_hash}
    return identity.post(
        "/internal/api-keys/verify", body, headers if headers is not None else as_service("identity")
    )


def _secret_anywhere_in_schema(identity: Identity, secret: str) -> list[str]:
    """Every text-like and binary column of every identity table, searched for the secret."""
    cols = identity.sql(
        "SELECT table_name, column_name, data_type FROM information_schema.columns"
        " WHERE table_schema = 'identity' AND data_type IN"
        " ('text', 'character varying', 'ARRAY', 'jsonb', 'json', 'bytea')"
    )
    assert len(cols) > 20
    hits: list[str] = []
    for col in cols:
        table, column = col["table_name"], col["column_name"]
        if col["data_type"] == "bytea":
            cond = f"position(convert_to($1, 'UTF8') in \"{column}\") > 0"
        else:
            cond = f"\"{column}\"::text LIKE '%' || $1 || '%'"
        if identity.sql(f'SELECT 1 FROM identity."{table}" WHERE {cond} LIMIT 1', secret):
            hits.append(f"{table}.{column}")
    return hits


def test_key_shown_once_and_only_its_hash_is_stored(identity: Identity, owner: Account) -> None:
    created = identity.post(
        "/api-keys", {"name": "ci deploys", "scopes": ["lattice:run", "lattice:run"]}, owner.headers
    )
    assert created.status_code == 201, created.text
    body = created.json()
    full = body["key"]
    assert full.startswith(f"cc_live_{body['prefix']}_")
    secret = full.rsplit("_", 1)[1] if full.count("_") == 3 else full.split("_", 3)[3]
    assert len(secret) == 43
    assert body["scopes"] == ["lattice:run"]

    listed = identity.get("/api-keys", owner.headers)
    assert listed.status_code == 200
    (item,) = listed.json()
    assert item["id"] == body["id"] and item["prefix"] == body["prefix"]
    assert "key" not in item and "secret_hash" not in item
    assert secret not in listed.text

    assert _secret_anywhere_in_schema(identity, secret) == []
    assert _secret_anywhere_in_schema(identity, full) == []
    stored = identity.sql("SELECT secret_hash FROM identity.api_keys WHERE id = $1", body["id"])
    assert stored[0]["secret_hash"] == hashlib.sha256(secret.encode()).hexdigest()
    logs = TEST_ROOT / "logs" / "platform"
    for log in Path(logs).glob("identity-*.log"):
        assert secret not in log.read_text()
    event = identity.event("identity.api_key.created", key_id=body["id"])
    assert event.data.prefix == body["prefix"]

    verified = _verify(identity, full)
    assert verified.status_code == 200, verified.text
    assert verified.json() == {
        "key_id": body["id"],
        "tenant_id": owner.tenant_id,
        "scopes": ["lattice:run"],
        "plan": "free",
        "expires_at": None,
    }


def test_test_keys_and_expiry(identity: Identity, owner: Account) -> None:
    past = identity.post("/api-keys", {"name": "old", "expires_at": "2020-01-01T00:00:00Z"}, owner.headers)
    assert past.status_code == 422
    assert past.json()["code"] == "invalid_expiry"
    naive = identity.post("/api-keys", {"name": "naive", "expires_at": "2999-01-01T00:00:00"}, owner.headers)
    assert naive.status_code == 422
    made = identity.post(
        "/api-keys", {"name": "sandbox", "env": "test", "expires_at": "2999-01-01T00:00:00Z"}, owner.headers
    ).json()
    assert made["key"].startswith("cc_test_")
    assert _verify(identity, made["key"]).json()["expires_at"].startswith("2999-01-01")
    identity.sql(
        "UPDATE identity.api_keys SET expires_at = now() - interval '1 second' WHERE id = $1", made["id"]
    )
    expired = _verify(identity, made["key"])
    assert expired.status_code == 401
    assert expired.json()["code"] == "api_key_invalid"


def test_revoke_publishes_the_key_hash_and_verification_fails(identity: Identity, owner: Account) -> None:
    made = identity.post("/api-keys", {"name": "temp"}, owner.headers).json()
    presented = apikeys.parse(made["key"])
    assert presented is not None
    gone = identity.call("DELETE", f"/api-keys/{made['id']}", owner.headers)
    assert gone.status_code == 204
    event = identity.event("identity.api_key.revoked", key_id=made["id"])
    assert event.data.key_hash == presented.secret_hash
    assert event.data.prefix == presented.prefix
    assert event.actor.id == owner.user_id
    assert identity.get("/api-keys", owner.headers).json() == []
    refused = _verify(identity, made["key"])
    assert refused.status_code == 401
    assert refused.json()["code"] == "api_key_invalid"
    again = identity.call("DELETE", f"/api-keys/{made['id']}", owner.headers)
    assert again.status_code == 404
    assert again.json()["code"] == "api_key_not_found"


def test_verification_is_for_the_gateway_only_and_exact(identity: Identity, owner: Account) -> None:
    made = identity.post("/api-keys", {"name": "v"}, owner.headers).json()
    for headers in (anonymous("identity"), owner.headers, key_headers(made["id"], owner.tenant_id)):
        resp = _verify(identity, made["key"], headers)
        assert resp.status_code == 403
        assert resp.json()["code"] == "service_only"
    presented = apikeys.parse(made["key"])
    assert presented is not None
    wrong = {"env": presented.env, "prefix": presented.prefix, "secret_hash": "0" * 64}
    assert identity.post("/internal/api-keys/verify", wrong, as_service("identity")).status_code == 401
    other_env = "test" if presented.env == "live" else "live"
    relabelled = {"env": other_env, "prefix": presented.prefix, "secret_hash": presented.secret_hash}
    assert identity.post("/internal/api-keys/verify", relabelled, as_service("identity")).status_code == 401
    unknown = {"env": presented.env, "prefix": "0123456789ab", "secret_hash": presented.secret_hash}
    assert (
        identity.post("/internal/api-keys/verify", unknown, as_service("identity")).json()["code"]
        == "api_key_invalid"
    )
    malformed = {"prefix": "x", "secret_hash": "nothex"}
    assert identity.post("/internal/api-keys/verify", malformed, as_service("identity")).status_code == 422


def test_plan_limits_active_keys(identity: Identity, owner: Account) -> None:
    first = identity.post("/api-keys", {"name": "one"}, owner.headers).json()
    assert identity.post("/api-keys", {"name": "two"}, owner.headers).status_code == 201
    third = identity.post("/api-keys", {"name": "three"}, owner.headers)
    assert third.status_code == 409
    assert third.json()["code"] == "api_key_limit_reached"
    identity.call("DELETE", f"/api-keys/{first['id']}", owner.headers)
    assert identity.post("/api-keys", {"name": "three"}, owner.headers).status_code == 201


def test_api_key_callers(identity: Identity, owner: Account) -> None:
    made = identity.post("/api-keys", {"name": "bot", "scopes": ["identity:read"]}, owner.headers).json()
    reader = key_headers(made["id"], owner.tenant_id, ("identity:read",))
    me = identity.get("/me", reader)
    assert me.status_code == 200
    assert me.json()["kind"] == "api_key"
    assert me.json()["api_key"]["id"] == made["id"]
    assert "key" not in me.json()["api_key"]
    assert me.json()["tenant"]["id"] == owner.tenant_id
    assert identity.get("/users", reader).status_code == 200
    no_scope = key_headers(made["id"], owner.tenant_id, ("lattice:run",))
    assert identity.get("/users", no_scope).json()["code"] == "insufficient_scope"
    assert identity.post("/api-keys", {"name": "more"}, reader).status_code == 403
    admin_key = key_headers(made["id"], owner.tenant_id, ("admin",))
    # An admin-scoped key acts as an admin, never as an owner.
    owner_invite = identity.post(
        "/users/invitations", {"email": "x-owner@example.com", "role": "owner"}, admin_key
    )
    assert owner_invite.json()["code"] == "owner_required"
