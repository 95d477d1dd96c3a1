"""Through the published gateway: register → login → API key → a routed call with rate-limit headers."""

from __future__ import annotations

import httpx

from shared.plans import PLANS
from tests.compose.conftest import Account, Compose


def test_register_login_key_and_routed_call(gateway: httpx.Client, owner: Account) -> None:
    login = gateway.post("/auth/login", json={"email": owner.email, "password": owner.password})
    assert login.status_code == 200, login.text
    bearer = {"Authorization": f"Bearer {login.json()['access_token']}"}

    me = gateway.get("/me", headers=bearer)
    assert me.status_code == 200, me.text
    assert me.json()["tenant"]["id"] == owner.tenant_id
    assert me.json()["user"]["email"] == owner.email

    created = gateway.post("/api-keys", json={"name": "compose suite"}, headers=bearer)
    assert created.status_code == 201, created.text
    key = created.json()["key"]
    assert key.startswith("cc_live_")

    first = gateway.get("/me", headers={"X-API-Key": key})
    second = gateway.get("/me", headers={"Authorization": f"Bearer {key}"})
    for resp in (first, second):
        assert resp.status_code == 200, resp.text
        assert resp.json()["kind"] == "api_key"
        assert resp.json()["tenant"]["id"] == owner.tenant_id
    limit = str(PLANS["free"].requests_per_minute)
    for name in ("RateLimit-Limit", "X-RateLimit-Limit"):
        assert first.headers[name] == limit
    for name in ("RateLimit-Reset", "X-RateLimit-Reset"):
        assert int(first.headers[name]) >= 0
    assert int(second.headers["RateLimit-Remaining"]) < int(first.headers["RateLimit-Remaining"])
    assert int(first.headers["X-RateLimit-Remaining"]) < int(limit)


def test_wrong_password_and_unknown_key_are_refused(gateway: httpx.Client, owner: Account) -> None:
    wrong = gateway.post("/auth/login", json={"email": owner.email, "password": "Not-The-Password-1"})
    assert wrong.status_code == 401
    assert wrong.headers["content-type"].startswith("application/problem+json")
    forged = gateway.get("/me", headers={"X-API-Key": "cc_live_0123456789ab_" + "x" * 43})
    assert forged.status_code == 401
    assert forged.headers["content-type"].startswith("application/problem+json")


def test_every_container_healthy_and_only_gateway_and_mail_ui_published(compose: Compose) -> None:
    containers = compose.ps()
    long_running = {c["Service"]: c for c in containers if c["State"] == "running"}
    assert set(long_running) >= {
        "postgres",
        "redis",
        "mailpit",
        "localstripe",
        "gateway",
        *(f"{s}{suffix}" for s in ("identity", "billing", "notifier", "usage") for suffix in ("", "-worker")),
    }
    assert {name: c["Health"] for name, c in long_running.items()} == dict.fromkeys(long_running, "healthy")
    one_shots = {
        c["Service"]: (c["State"], c["ExitCode"]) for c in containers if c["Service"] in ("keys", "migrate")
    }
    assert one_shots == {"keys": ("exited", 0), "migrate": ("exited", 0)}
    published = {
        (c["Service"], p["TargetPort"])
        for c in containers
        for p in c.get("Publishers") or []
        if p["PublishedPort"]
    }
    assert published == {("gateway", 8000), ("mailpit", 8025)}


def test_each_service_connects_to_postgres_as_its_own_role(compose: Compose) -> None:
    # `migrate --create-roles` made the roles from the services' URLs; nobody else runs as the owner.
    sql = (
        "SELECT DISTINCT usename FROM pg_stat_activity"
        " WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()"
    )
    users = compose.exec("postgres", "psql", "-U", "catalytic", "-d", "catalytic", "-tAc", sql).split()
    assert set(users) == {"identity_svc", "billing_svc", "notifier_svc", "usage_svc"}
