"""Who may read what: every read is scoped to the caller's tenant; bad input gets a stable code."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import httpx
import pytest
from redis.asyncio import Redis

from shared.events import Actor, UserRoleChanged, new_event
from shared.ids import uuid7
from tests.support import anonymous, as_caller, as_service
from tests.usage.helpers import admin, batch, eventually, member, record, send_batches
from tests.usage.test_audit import page, publish, wait_for_count


async def _calls(api: httpx.AsyncClient, headers: dict[str, str], since: datetime) -> int:
    resp = await api.get("/usage", params={"from": since.isoformat(), "group_by": "route"}, headers=headers)
    assert resp.status_code == 200, resp.text
    total: int = resp.json()["total_calls"]
    return total


async def test_a_tenant_reads_only_its_own_usage_and_audit_log(api: httpx.AsyncClient, bus: Redis) -> None:
    a, b = uuid7(), uuid7()
    now = datetime.now(UTC) - timedelta(seconds=1)
    await send_batches(bus, [batch([record(a, now) for _ in range(3)] + [record(b, now) for _ in range(7)])])
    events = {
        t: [
            new_event(UserRoleChanged(user_id=uuid7(), old_role="member", new_role="admin"), tenant_id=t)
            for _ in range(4)
        ]
        for t in (a, b)
    }
    await publish(bus, events[a] + events[b])
    since = now - timedelta(hours=1)

    async def stored() -> bool:
        return await _calls(api, member(b), since) == 7

    await eventually(stored, what="usage stored")
    assert await _calls(api, member(a), since) == 3
    await wait_for_count(api, b, 4)
    a_page = await page(api, a, limit=2)
    b_page = await page(api, b, limit=2)
    assert {i["tenant_id"] for i in a_page["items"]} == {str(a)}
    assert {i["id"] for i in (await page(api, a, limit=50))["items"]} == {str(e.id) for e in events[a]}
    # B's cursor in A's hands is only a position: A still sees A's rows and nothing else.
    crossed = await page(api, a, cursor=b_page["next_cursor"], limit=50)
    assert {i["tenant_id"] for i in crossed["items"]} <= {str(a)}
    export = await api.get("/audit-logs/export", headers=admin(a))
    assert str(b) not in export.text and export.text.count(str(a)) == 4
    # An event id of B's, looked up by A through the operators' route: refused outright.
    refused = await api.get(f"/internal/audit/{events[b][0].id}", headers=admin(a))
    assert refused.status_code == 403


@pytest.mark.parametrize(
    ("path", "headers", "status", "code"),
    [
        ("/usage", {}, 401, "assertion_missing"),
        ("/usage", {"x-catalytic-assertion": "forged.token"}, 401, "assertion_invalid"),
        ("/usage/summary", "anonymous", 401, "unauthorized"),
        ("/usage", "other-audience", 401, "assertion_invalid"),
        ("/audit-logs", "member", 403, "insufficient_role"),
        ("/audit-logs/export", "member", 403, "insufficient_role"),
        ("/audit-logs", "key-without-admin", 403, "insufficient_role"),
        ("/audit-logs", "service", 401, "unauthorized"),
    ],
)
async def test_callers_without_the_right_get_problems(
    api: httpx.AsyncClient, path: str, headers: Any, status: int, code: str
) -> None:
    tenant = uuid7()
    callers = {
        "anonymous": anonymous("usage"),
        "other-audience": as_caller("identity", tenant_id=tenant, user_id=uuid7()),
        "member": member(tenant),
        "key-without-admin": as_caller(
            "usage", kind="api_key", tenant_id=tenant, api_key_id=uuid7(), scopes=("jobs",)
        ),
        "service": as_service("usage"),
    }
    resp = await api.get(path, headers=callers.get(headers, headers) if isinstance(headers, str) else headers)
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    assert resp.json()["code"] == code


async def test_api_keys_read_usage_and_admin_keys_read_the_audit_log(api: httpx.AsyncClient) -> None:
    tenant = uuid7()
    key = as_caller("usage", kind="api_key", tenant_id=tenant, api_key_id=uuid7(), scopes=("jobs",))
    assert (await api.get("/usage/summary", headers=key)).status_code == 200
    admin_key = as_caller("usage", kind="api_key", tenant_id=tenant, api_key_id=uuid7(), scopes=("admin",))
    assert (await api.get("/audit-logs", headers=admin_key)).json() == {"items": [], "next_cursor": None}


@pytest.mark.parametrize(
    ("path", "params", "code"),
    [
        ("/usage", {"from": "yesterday"}, "invalid_time"),
        ("/usage", {"from": "2026-01-02", "to": "2026-01-01"}, "invalid_range"),
        ("/usage", {"from": "2025-01-01", "to": "2026-06-01"}, "range_too_large"),
        ("/usage", {"granularity": "hour", "from": "2026-01-01", "to": "2026-03-01"}, "range_too_large"),
        ("/usage", {"granularity": "minute"}, "invalid_input"),
        ("/usage", {"group_by": "ip"}, "invalid_input"),
        ("/audit-logs", {"cursor": "not-a-cursor"}, "invalid_cursor"),
        ("/audit-logs", {"cursor": "WyJ4Il0"}, "invalid_cursor"),
        ("/audit-logs", {"limit": "0"}, "invalid_limit"),
        ("/audit-logs", {"limit": "201"}, "invalid_limit"),
        ("/audit-logs", {"limit": "ten"}, "invalid_input"),
        ("/audit-logs", {"from": "3000-13-01"}, "invalid_time"),
        ("/audit-logs/export", {"format": "xlsx"}, "invalid_input"),
        ("/audit-logs/export", {"from": "2026-02-01", "to": "2026-01-01"}, "invalid_range"),
        ("/audit-logs", {"actor": "user\x00"}, "invalid_input"),
        ("/audit-logs/export", {"action": "identity.\x00*"}, "invalid_input"),
    ],
)
async def test_bad_input_gets_a_problem_with_a_stable_code(
    api: httpx.AsyncClient, path: str, params: dict[str, str], code: str
) -> None:
    resp = await api.get(path, params=params, headers=admin(uuid7()))
    assert resp.status_code == 422, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    assert resp.json()["code"] == code


async def test_usage_defaults_to_the_last_30_days_by_day(api: httpx.AsyncClient, bus: Redis) -> None:
    tenant = uuid7()
    now = datetime.now(UTC)
    await send_batches(bus, [batch([record(tenant, now - timedelta(days=d)) for d in (0, 3, 29, 45)])])

    async def stored() -> bool:
        body = (await api.get("/usage", headers=member(tenant))).json()
        return bool(body["total_calls"] == 3)

    await eventually(stored, what="usage stored")
    body = (await api.get("/usage", headers=member(tenant))).json()
    assert body["granularity"] == "day" and body["group_by"] is None
    assert len(body["buckets"]) == 3  # the call 45 days ago is outside the default window
    starts = [datetime.fromisoformat(b["start"]) for b in body["buckets"]]
    assert starts == sorted(starts) and all(s.hour == 0 and s.tzinfo is not None for s in starts)


def _ids(items: list[dict[str, Any]]) -> set[UUID]:
    return {UUID(i["id"]) for i in items}


async def test_events_without_a_tenant_are_nobodys(api: httpx.AsyncClient, bus: Redis) -> None:
    tenant = uuid7()
    system = new_event(
        UserRoleChanged(user_id=uuid7(), old_role="member", new_role="admin"),
        tenant_id=None,
        actor=Actor(kind="operator", id="ops"),
    )
    mine = new_event(UserRoleChanged(user_id=uuid7(), old_role="member", new_role="admin"), tenant_id=tenant)
    await publish(bus, [system, mine])
    items = await wait_for_count(api, tenant, 1)

    async def audited() -> bool:
        found = await api.get(f"/internal/audit/{system.id}", headers=as_service("usage"))
        return found.status_code == 200

    await eventually(audited, what="tenantless event audited")
    assert _ids(items) == {mine.id}
    assert (await page(api, tenant, actor="operator"))["items"] == []
