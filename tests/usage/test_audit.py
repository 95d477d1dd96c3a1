"""The audit log: one row per domain event, secrets out, stable pages, filters, append-only."""

from __future__ import annotations

import asyncio
import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg
import httpx
import msgspec
import pytest
from redis.asyncio import Redis

from shared.events import (
    CATALOG,
    Actor,
    ApiKeyCreated,
    Event,
    PaymentSucceeded,
    TenantUpdated,
    UserRoleChanged,
    new_event,
    stream_of,
)
from shared.ids import uuid7
from tests.platform import Platform
from tests.support import as_service
from tests.usage.catalog import domain_types, sample_event
from tests.usage.helpers import admin, eventually, listening_pid, xadd


async def publish(bus: Redis, events: list[Event[Any]]) -> None:
    """What the producing services' relays do: each event to its stream."""
    for event in events:
        await xadd(bus, stream_of(event), [event])


async def page(api: httpx.AsyncClient, tenant: UUID, **params: Any) -> dict[str, Any]:
    resp = await api.get("/audit-logs", params=params, headers=admin(tenant))
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


async def all_items(api: httpx.AsyncClient, tenant: UUID, **params: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        body = await page(api, tenant, **params, **({"cursor": cursor} if cursor else {}))
        items += body["items"]
        cursor = body["next_cursor"]
        if cursor is None:
            return items


async def wait_for_count(api: httpx.AsyncClient, tenant: UUID, n: int) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []

    async def arrived() -> bool:
        found[:] = await all_items(api, tenant, limit=200)
        return len(found) >= n

    await eventually(arrived, what=f"{n} audit rows")
    return found


EXPECTED_TARGETS = {
    "identity.api_key.created": ("api_key", "key_id"),
    "identity.user.invited": ("invitation", "invitation_id"),
    "identity.user.registered": ("user", "user_id"),
    "billing.subscription.changed": ("subscription", "subscription_id"),
    "billing.payment.failed": ("invoice", "invoice_id"),
    "billing.checkout.completed": ("checkout_session", "session_id"),
    "notifier.webhook_endpoint.disabled": ("webhook_endpoint", "endpoint_id"),
    "notifier.email.sent": ("email", "to"),
    "identity.tenant.created": ("tenant", None),
}


async def test_every_domain_event_type_is_audited_without_its_secrets(
    platform: Platform, api: httpx.AsyncClient, bus: Redis, db: asyncpg.Connection
) -> None:
    tenant, user = uuid7(), uuid7()
    secret = f"s3cr3t-{uuid7().hex}"
    types = domain_types()
    assert len(types) >= 25  # identity, billing, notifier and usage types
    sent = {t: sample_event(t, tenant, user, secret) for t in types}
    await publish(bus, list(sent.values()))
    # Other services react to some of these (the notifier mails a reset link and publishes
    # notifier.email.sent for this tenant): only the rows of the events sent here are compared.
    sent_ids = {str(e.id) for e in sent.values()}
    items: list[dict[str, Any]] = []

    async def all_recorded() -> bool:
        items[:] = await all_items(api, tenant, limit=200)
        return sent_ids <= {item["id"] for item in items}

    await eventually(all_recorded, what=f"{len(types)} audit rows")
    by_action = {item["action"]: item for item in items if item["id"] in sent_ids}
    assert sorted(by_action) == types
    for event_type, event in sent.items():
        item = by_action[event_type]
        assert item["id"] == str(event.id)
        assert item["tenant_id"] == str(tenant)
        assert item["actor"] == {"kind": "user", "id": str(user)}
        assert item["source_ip"] == "203.0.113.9"
        assert item["correlation_id"] == f"corr-{event_type}"
        assert datetime.fromisoformat(item["occurred_at"]) == event.occurred_at
        assert item["target"] is not None
    for event_type, (kind, field) in EXPECTED_TARGETS.items():
        data = msgspec.to_builtins(sent[event_type].data)
        want = str(data[field]) if field else str(tenant)
        assert by_action[event_type]["target"] == {"type": kind, "id": want}, event_type
    invited = by_action["identity.user.invited"]["data"]
    assert invited["token"] == "[redacted]"
    assert invited["email"] == msgspec.to_builtins(sent["identity.user.invited"].data)["email"]
    assert by_action["identity.api_key.revoked"]["data"]["key_hash"] == "[redacted]"
    # The secret is nowhere: not in the API, not in either export, not in the table.
    listing = await api.get("/audit-logs", params={"limit": 200}, headers=admin(tenant))
    ndjson = await api.get("/audit-logs/export", params={"format": "ndjson"}, headers=admin(tenant))
    csv = await api.get("/audit-logs/export", params={"format": "csv"}, headers=admin(tenant))
    for body in (listing.text, ndjson.text, csv.text):
        assert secret not in body
    exported = [msgspec.json.decode(line) for line in ndjson.text.splitlines()]
    assert sorted(row["id"] for row in exported if row["id"] in sent_ids) == sorted(sent_ids)  # each once
    assert await db.fetchval("SELECT count(*) FROM audit_logs WHERE data::text LIKE $1", f"%{secret}%") == 0
    # Operators (a service assertion) can look one up by event id; tenants cannot use that route.
    one = sent["identity.user.registered"]
    got = await api.get(f"/internal/audit/{one.id}", headers=as_service("usage"))
    assert got.status_code == 200 and got.json()["action"] == "identity.user.registered"
    refused = await api.get(f"/internal/audit/{one.id}", headers=admin(tenant))
    assert refused.status_code == 403 and refused.json()["code"] == "service_caller_required"


async def test_nul_characters_do_not_block_an_event(api: httpx.AsyncClient, bus: Redis) -> None:
    tenant = uuid7()
    event = new_event(
        TenantUpdated(name="Acme\x00 Corp"),
        tenant_id=tenant,
        actor=Actor(kind="user", id="u\x001"),
        correlation_id="corr\x00-1",
    )
    await publish(bus, [event])
    (item,) = await wait_for_count(api, tenant, 1)
    assert item["data"] == {"name": "Acme Corp"}
    assert (item["actor"]["id"], item["correlation_id"]) == ("u1", "corr-1")


def _events(tenant: UUID, users: list[UUID], base: datetime) -> list[Event[Any]]:
    """23 events; several share a timestamp, so the id must settle their order."""
    out: list[Event[Any]] = []
    for i in range(23):
        if i % 3 == 0:
            data: Any = PaymentSucceeded(invoice_id=f"in_{i}", amount_cents=100 * i, currency="usd")
            actor = Actor(kind="stripe")
        elif i % 3 == 1:
            data = ApiKeyCreated(key_id=uuid7(), prefix=f"{i:012x}", name=f"key {i}")
            actor = Actor(kind="user", id=str(users[i % 2]), ip="198.51.100.1")
        else:
            data = UserRoleChanged(user_id=uuid7(), old_role="member", new_role="admin")
            actor = Actor(kind="user", id=str(users[i % 2]))
        event = new_event(data, tenant_id=tenant, actor=actor)
        at = base + timedelta(seconds=i // 4)  # groups of four share a timestamp
        out.append(msgspec.structs.replace(event, occurred_at=at))
    return out


def _order(events: list[Event[Any]]) -> list[str]:
    return [str(e.id) for e in sorted(events, key=lambda e: (e.occurred_at, e.id), reverse=True)]


async def test_pages_are_stable_and_filters_narrow(api: httpx.AsyncClient, bus: Redis) -> None:
    tenant, users = uuid7(), [uuid7(), uuid7()]
    base = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    events = _events(tenant, users, base)
    await publish(bus, events)
    await wait_for_count(api, tenant, len(events))
    # Newest first, ties broken by id; pages of 5 meet end to end, even with rows arriving meanwhile.
    first = await page(api, tenant, limit=5)
    late = new_event(UserRoleChanged(user_id=uuid7(), old_role="admin", new_role="member"), tenant_id=tenant)
    await publish(bus, [late])
    await wait_for_count(api, tenant, len(events) + 1)
    seen = [i["id"] for i in first["items"]]
    cursor = first["next_cursor"]
    while cursor:
        body = await page(api, tenant, limit=5, cursor=cursor)
        seen += [i["id"] for i in body["items"]]
        cursor = body["next_cursor"]
    assert seen == _order(events)  # the late row is newer than the first page: not in later pages
    everything = [i["id"] for i in await all_items(api, tenant, limit=7)]
    assert everything == _order([*events, late])

    def ids(where: Any) -> list[str]:
        return _order([e for e in events if where(e)])

    by_user = [i["id"] for i in await all_items(api, tenant, actor=str(users[1]))]
    assert by_user == ids(lambda e: e.actor.id == str(users[1]))
    stripe = [i["id"] for i in await all_items(api, tenant, actor="stripe")]
    assert stripe == ids(lambda e: e.actor.kind == "stripe")
    created = [i["id"] for i in await all_items(api, tenant, action="identity.api_key.created")]
    assert created == ids(lambda e: e.type == "identity.api_key.created")
    identity = [i["id"] for i in await all_items(api, tenant, action="identity.*", limit=4)]
    assert identity == _order([e for e in [*events, late] if e.type.startswith("identity.")])
    since, until = base + timedelta(seconds=2), base + timedelta(seconds=4)
    window = await all_items(api, tenant, **{"from": since.isoformat(), "to": until.isoformat()})
    assert [i["id"] for i in window] == ids(lambda e: since <= e.occurred_at < until)
    both = await all_items(api, tenant, actor=str(users[0]), action="identity.user.role_changed")
    assert [i["id"] for i in both] == ids(
        lambda e: e.actor.id == str(users[0]) and e.type == "identity.user.role_changed"
    )


async def test_export_formats_match_the_listing(api: httpx.AsyncClient, bus: Redis) -> None:
    tenant, users = uuid7(), [uuid7(), uuid7()]
    base = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
    events = _events(tenant, users, base)
    formula = new_event(
        UserRoleChanged(user_id=uuid7(), old_role="member", new_role="admin"),
        tenant_id=tenant,
        actor=Actor(kind="user", id='=HYPERLINK("http://evil")'),
        correlation_id="+cmd|' /C calc'!A0",
    )
    await publish(bus, [*events, formula])
    listed = await wait_for_count(api, tenant, len(events) + 1)
    resp = await api.get("/audit-logs/export", params={"format": "ndjson"}, headers=admin(tenant))
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("application/x-ndjson")
    assert resp.headers["content-disposition"].startswith(f'attachment; filename="audit-logs-{tenant}-')
    exported = [msgspec.json.decode(line) for line in resp.content.splitlines()]
    assert exported == list(reversed(listed))  # the export runs oldest first
    params = {"format": "csv", "action": "identity.api_key.created"}
    resp = await api.get("/audit-logs/export", params=params, headers=admin(tenant))
    assert resp.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(resp.text)))
    want = [i for i in reversed(listed) if i["action"] == "identity.api_key.created"]
    assert [r["id"] for r in rows] == [i["id"] for i in want]
    assert [msgspec.json.decode(r["data"]) for r in rows] == [i["data"] for i in want]
    assert rows[0]["target_type"] == "api_key" and rows[0]["source_ip"] == "198.51.100.1"
    resp = await api.get("/audit-logs/export", params={"format": "csv", "actor": formula.actor.id})
    assert resp.status_code == 401  # no assertion, no export
    resp = await api.get(
        "/audit-logs/export", params={"format": "csv", "action": formula.type}, headers=admin(tenant)
    )
    cells = next(r for r in csv.DictReader(io.StringIO(resp.text)) if r["id"] == str(formula.id))
    assert cells["actor_id"] == "'" + formula.actor.id  # spreadsheets read it as text, not a formula
    assert cells["correlation_id"] == "'" + (formula.correlation_id or "")


def _rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


EXPORT_ROWS = 100_000


async def test_export_of_100k_rows_streams_in_bounded_memory(
    platform: Platform, api: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    tenant, user = uuid7(), str(uuid7())
    base = datetime.now(UTC) - timedelta(days=1)
    rows = [
        (
            uuid7(),
            tenant,
            "user",
            user,
            "identity.api_key.created",
            "api_key",
            f"key-{i:08d}",
            f"req-{i:012d}",
            "192.0.2.44",
            msgspec.json.encode({"name": f"build server {i}", "prefix": f"{i:012x}"}).decode(),
            base + timedelta(milliseconds=i),
        )
        for i in range(EXPORT_ROWS)
    ]
    columns = [
        "id",
        "tenant_id",
        "actor_kind",
        "actor_id",
        "action",
        "target_type",
        "target_id",
        "correlation_id",
        "source_ip",
        "data",
        "occurred_at",
    ]
    await db.copy_records_to_table("audit_logs", records=rows, columns=columns, schema_name="usage")
    del rows
    pid = listening_pid(int(platform.env["USAGE_PORT"]))
    headers = admin(tenant)
    warm_up = {"format": "csv", "to": (base + timedelta(seconds=5)).isoformat()}
    warm = await api.get("/audit-logs/export", params=warm_up, headers=headers)
    assert warm.status_code == 200  # code paths and pools warmed before the baseline
    baseline = peak = _rss_kb(pid)
    size = lines = 0
    async with api.stream("GET", "/audit-logs/export", params={"format": "csv"}, headers=headers) as resp:
        assert resp.status_code == 200
        assert resp.headers.get("transfer-encoding") == "chunked"
        assert "content-length" not in resp.headers
        sampled = 0
        async for chunk in resp.aiter_bytes():
            size += len(chunk)
            lines += chunk.count(b"\r\n")
            if size - sampled > 512 * 1024:
                sampled = size
                peak = max(peak, _rss_kb(pid))
                await asyncio.sleep(0)
    peak = max(peak, _rss_kb(pid))
    assert lines == EXPORT_ROWS + 1  # and a header
    growth_mb = (peak - baseline) / 1024
    size_mb = size / 1024 / 1024
    # Holding every row (or the whole body) would take more than the body's size; a stream
    # holds one batch at a time.
    assert size_mb > 25
    assert growth_mb < 15, f"usage API grew by {growth_mb:.1f} MB while streaming {size_mb:.1f} MB"


async def test_runtime_role_can_add_and_read_audit_rows_but_never_change_them(
    platform: Platform, db: asyncpg.Connection
) -> None:
    url = platform.env["USAGE_DATABASE_URL"]
    runtime = await asyncpg.connect(url, server_settings={"search_path": "usage"})
    try:
        event_id = uuid7()
        await runtime.execute(
            "INSERT INTO audit_logs (id, tenant_id, actor_kind, action, occurred_at)"
            " VALUES ($1, $2, 'system', 'test.append_only', now())",
            event_id,
            uuid7(),
        )
        assert await runtime.fetchval("SELECT action FROM audit_logs WHERE id = $1", event_id)
        for sql in (
            "UPDATE audit_logs SET action = 'forged' WHERE id = $1",
            "DELETE FROM audit_logs WHERE id = $1",
        ):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await runtime.execute(sql, event_id)
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await runtime.execute("TRUNCATE audit_logs")
        # Not even the table's owner: the trigger refuses every change.
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
            await db.execute("UPDATE audit_logs SET action = 'forged' WHERE id = $1", event_id)
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
            await db.execute("DELETE FROM audit_logs WHERE id = $1", event_id)
        action = await db.fetchval("SELECT action FROM audit_logs WHERE id = $1", event_id)
        assert action == "test.append_only"
        grants = await db.fetchrow(
            "SELECT has_table_privilege('usage_svc', 'usage.audit_logs', 'INSERT') AS ins,"
            " has_table_privilege('usage_svc', 'usage.audit_logs', 'SELECT') AS sel,"
            " has_table_privilege('usage_svc', 'usage.audit_logs', 'UPDATE') AS upd,"
            " has_table_privilege('usage_svc', 'usage.audit_logs', 'DELETE') AS del,"
            " has_table_privilege('usage_svc', 'usage.audit_logs', 'TRUNCATE') AS trunc"
        )
        assert dict(grants) == {"ins": True, "sel": True, "upd": False, "del": False, "trunc": False}
    finally:
        await runtime.close()


def test_catalog_sample_covers_every_stream() -> None:
    streams = {CATALOG[t].stream for t in domain_types()}
    assert streams == {"identity.events", "billing.events", "notifier.events", "usage.events"}
