"""Webhook endpoints over HTTP: CRUD for owners and admins, secrets shown once, tenants kept apart, SSRF."""

from __future__ import annotations

from collections.abc import AsyncIterator
from uuid import UUID, uuid4

import httpx
import pytest

from shared.events import UserRegistered
from tests.notifier.conftest import Notifier
from tests.notifier.helpers import admin_of, emit, event, receiving
from tests.support import anonymous, as_caller

HOOK = "http://127.0.0.2:9/hooks"  # an allowed address; nothing is delivered in these tests


@pytest.fixture
async def http(notifier: Notifier) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=notifier.base_url) as client:
        yield client


async def _create(http: httpx.AsyncClient, tenant: UUID, **body: object) -> dict[str, object]:
    resp = await http.post("/webhooks/endpoints", json={"url": HOOK, **body}, headers=admin_of(tenant))
    assert resp.status_code == 201, resp.text
    created: dict[str, object] = resp.json()
    return created


async def test_crud_and_the_secret_is_shown_once(http: httpx.AsyncClient, notifier: Notifier) -> None:
    tenant = uuid4()
    made = await _create(http, tenant, description="orders", event_types=["billing.payment.succeeded"])
    secret = str(made["secret"])
    assert secret.startswith("whsec_") and len(secret) > 40
    assert made["enabled"] is True and made["event_types"] == ["billing.payment.succeeded"]
    path = f"/webhooks/endpoints/{made['id']}"
    got = (await http.get(path, headers=admin_of(tenant))).json()
    assert got["url"] == HOOK and got["description"] == "orders"
    assert "secret" not in got and secret not in str(got)
    listed = (await http.get("/webhooks/endpoints", headers=admin_of(tenant))).json()
    assert [e["id"] for e in listed] == [made["id"]] and "secret" not in listed[0]
    # Stored sealed: the database never holds the secret itself.
    sealed = await notifier.pool.fetchval("SELECT secret FROM webhooks WHERE id = $1", UUID(str(made["id"])))
    assert sealed.startswith("v1.") and secret not in sealed and secret[6:] not in sealed
    # PATCH: only the given fields change; null event_types means every event.
    changed = await http.patch(path, json={"event_types": None, "enabled": False}, headers=admin_of(tenant))
    assert changed.status_code == 200, changed.text
    assert changed.json()["event_types"] is None and changed.json()["enabled"] is False
    assert (
        changed.json()["description"] == "orders" and changed.json()["disabled_reason"] == "disabled by user"
    )
    back = await http.patch(path, json={"enabled": True, "description": "all"}, headers=admin_of(tenant))
    assert back.json()["enabled"] is True and back.json()["disabled_reason"] is None
    # Rotation gives a new secret, once; the old one keeps signing for the overlap.
    rotated = await http.post(f"{path}/secret/rotate", json={"overlap_seconds": 60}, headers=admin_of(tenant))
    assert rotated.status_code == 200, rotated.text
    assert rotated.json()["secret"].startswith("whsec_") and rotated.json()["secret"] != secret
    assert (await http.delete(path, headers=admin_of(tenant))).status_code == 204
    assert (await http.get(path, headers=admin_of(tenant))).json()["code"] == "webhook_endpoint_not_found"


async def test_wildcard_types_and_the_type_list(http: httpx.AsyncClient) -> None:
    tenant = uuid4()
    made = await _create(http, tenant, event_types=["billing.*", "identity.user.invited"])
    assert made["event_types"] == ["billing.*", "identity.user.invited"]
    types = (await http.get("/webhooks/event-types", headers=admin_of(tenant))).json()
    assert "billing.payment.failed" in types and "identity.user.registered" in types
    assert not any(t.endswith(".ping") for t in types)


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"url": "ftp://example.com/x"}, "webhook_url_invalid"),
        ({"url": "http:///nohost"}, "webhook_url_invalid"),
        ({"url": "https://user:pw@example.com/x"}, "webhook_url_invalid"),
        ({"url": "https://example.com:99999/x"}, "webhook_url_invalid"),
        ({"url": HOOK, "event_types": ["no.such.event"]}, "unknown_event_type"),
        ({"url": HOOK, "event_types": ["nothing.*"]}, "unknown_event_type"),
        ({"url": HOOK, "event_types": []}, "invalid_input"),
        ({"url": HOOK, "surprise": 1}, "invalid_input"),
        ({"url": "x" * 3000}, "invalid_input"),
        ({"url": HOOK, "description": "nul\x00byte"}, "invalid_input"),  # Postgres text cannot hold it
        ({}, "invalid_input"),
    ],
)
async def test_bad_input_is_a_problem_and_writes_nothing(
    http: httpx.AsyncClient, notifier: Notifier, body: dict[str, object], code: str
) -> None:
    tenant = uuid4()
    resp = await http.post("/webhooks/endpoints", json=body, headers=admin_of(tenant))
    assert resp.status_code == 422, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    assert resp.json()["code"] == code
    assert await notifier.pool.fetchval("SELECT count(*) FROM webhooks WHERE tenant_id = $1", tenant) == 0


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost:8080/hook",  # a name resolving to 127.0.0.1
        "http://127.0.0.1/hook",
        "http://127.1/hook",
        "http://2130706433/hook",  # 127.0.0.1 as one number
        "http://[::1]:8080/hook",
        "http://[::ffff:127.0.0.1]/hook",  # IPv4-mapped IPv6
        "http://0.0.0.0/hook",
        "http://10.0.0.5/hook",
        "http://167772165/hook",  # 10.0.0.5 as one number
        "http://172.16.3.4/hook",
        "http://192.168.1.20/hook",
        "http://169.254.169.254/latest/meta-data/",  # cloud metadata
        "http://0xa9.0xfe.0xa9.0xfe/latest/meta-data/",  # the same, in hex
        "http://100.100.100.200/",  # Alibaba metadata (CGNAT range)
        "http://[fd00:ec2::254]/",  # AWS metadata over IPv6
        "http://[fe80::1]/",
        "http://224.0.0.1/",
    ],
)
async def test_forbidden_destinations_are_refused(
    http: httpx.AsyncClient, notifier: Notifier, url: str
) -> None:
    tenant = uuid4()
    resp = await http.post("/webhooks/endpoints", json={"url": url}, headers=admin_of(tenant))
    assert resp.status_code == 422, resp.text
    assert resp.json()["code"] == "webhook_url_forbidden"
    assert await notifier.pool.fetchval("SELECT count(*) FROM webhooks WHERE tenant_id = $1", tenant) == 0
    # Nor may an existing endpoint be pointed there.
    made = await _create(http, tenant)
    moved = await http.patch(f"/webhooks/endpoints/{made['id']}", json={"url": url}, headers=admin_of(tenant))
    assert moved.status_code == 422 and moved.json()["code"] == "webhook_url_forbidden"


async def test_only_owners_and_admins_of_a_tenant(http: httpx.AsyncClient) -> None:
    tenant = uuid4()
    assert (await http.get("/webhooks/endpoints", headers=admin_of(tenant, role="admin"))).status_code == 200
    member = await http.get("/webhooks/endpoints", headers=admin_of(tenant, role="member"))
    assert member.status_code == 403 and member.json()["code"] == "insufficient_role"
    anon = await http.get("/webhooks/endpoints", headers=anonymous("notifier"))
    assert anon.status_code == 401
    missing = await http.get("/webhooks/endpoints")
    assert missing.status_code == 401 and missing.json()["code"] == "assertion_missing"
    wrong_aud = await http.get("/webhooks/endpoints", headers=as_caller("identity", tenant_id=tenant))
    assert wrong_aud.status_code == 401 and wrong_aud.json()["code"] == "assertion_invalid"
    key = as_caller("notifier", kind="api_key", tenant_id=tenant, api_key_id=uuid4(), scopes=("admin",))
    assert (await http.get("/webhooks/endpoints", headers=key)).status_code == 200
    weak = as_caller("notifier", kind="api_key", tenant_id=tenant, api_key_id=uuid4(), scopes=("read",))
    assert (await http.get("/webhooks/endpoints", headers=weak)).status_code == 403


async def test_endpoint_limit(http: httpx.AsyncClient, notifier: Notifier) -> None:
    tenant = uuid4()
    for _ in range(notifier.settings.webhook_max_endpoints):
        await _create(http, tenant)
    resp = await http.post("/webhooks/endpoints", json={"url": HOOK}, headers=admin_of(tenant))
    assert resp.status_code == 409 and resp.json()["code"] == "webhook_endpoint_limit"


async def test_tenants_never_see_or_touch_each_others_endpoints(
    http: httpx.AsyncClient, notifier: Notifier
) -> None:
    mine, theirs = uuid4(), uuid4()
    async with receiving() as receiver:
        body = {"url": receiver.url, "event_types": ["identity.user.registered"]}
        resp = await http.post("/webhooks/endpoints", json=body, headers=admin_of(mine))
        endpoint = resp.json()["id"]
        await emit(notifier.redis, event(UserRegistered(user_id=uuid4(), email="iso@example.test"), mine))
        await receiver.wait(1)
    path = f"/webhooks/endpoints/{endpoint}"
    log = (await http.get(f"{path}/deliveries", headers=admin_of(mine))).json()
    assert len(log) == 1
    delivery = log[0]["id"]
    other = admin_of(theirs)
    assert (await http.get("/webhooks/endpoints", headers=other)).json() == []
    calls = [
        http.get(path, headers=other),
        http.patch(path, json={"enabled": False}, headers=other),
        http.post(f"{path}/secret/rotate", json={}, headers=other),
        http.get(f"{path}/deliveries", headers=other),
        http.get(f"{path}/deliveries/{delivery}", headers=other),
        http.post(f"{path}/deliveries/{delivery}/retry", headers=other),
        http.delete(path, headers=other),
    ]
    for call in calls:
        resp = await call
        assert resp.status_code == 404, resp.text
        assert resp.json()["code"] == "webhook_endpoint_not_found"
    # Another tenant's delivery id under one's own endpoint is not found either.
    own = await _create(http, theirs)
    stolen = await http.get(f"/webhooks/endpoints/{own['id']}/deliveries/{delivery}", headers=other)
    assert stolen.status_code == 404 and stolen.json()["code"] == "webhook_delivery_not_found"
    replay = await http.post(f"/webhooks/endpoints/{own['id']}/deliveries/{delivery}/retry", headers=other)
    assert replay.status_code == 404
    still = (await http.get(path, headers=admin_of(mine))).json()
    assert still["enabled"] is True
