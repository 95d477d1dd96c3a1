"""`docker compose down` then `up`: Postgres, Redis and the keys live on in their named volumes.

Runs last (file order): it recreates every container, so the published ports change."""

from __future__ import annotations

import httpx

from tests.compose.conftest import Compose, register


def test_down_and_up_keeps_accounts_keys_and_tokens(compose: Compose) -> None:
    with httpx.Client(base_url=compose.gateway, timeout=30) as gateway:
        account = register(gateway, "survivor")
        created = gateway.post("/api-keys", json={"name": "survives"}, headers=account.bearer)
        assert created.status_code == 201, created.text
        key = created.json()["key"]

    compose.run("down")  # no -v: the named volumes stay
    assert compose.ps() == []
    compose.up()

    with httpx.Client(base_url=compose.gateway, timeout=30) as gateway:
        # The token signed before the restart still verifies: the key pair was kept, not regenerated.
        me = gateway.get("/me", headers=account.bearer)
        assert me.status_code == 200, me.text
        assert me.json()["tenant"]["id"] == account.tenant_id
        login = gateway.post("/auth/login", json={"email": account.email, "password": account.password})
        assert login.status_code == 200, login.text
        by_key = gateway.get("/me", headers={"X-API-Key": key})
        assert by_key.status_code == 200, by_key.text
        assert by_key.json()["tenant"]["id"] == account.tenant_id
        again = gateway.post(
            "/auth/register",
            json={"email": account.email, "password": account.password, "company_name": "Again"},
        )
        assert again.status_code == 409, again.text
