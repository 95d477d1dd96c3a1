"""Usage logs and audit logs (usage), webhook endpoints and deliveries (notifier)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from services.notifier.repository import legacy as notifier
from services.usage import repository as usage
from services.usage.metering import meter, valid_ip
from services.usage.models import AuditRow
from shared.crypto import SecretBox
from shared.db import Connection
from shared.events import Event, RequestBatch, UsageRecord, new_event
from shared.ops.legacy.accounts import Imported, use_schema
from shared.ops.legacy.report import Report
from shared.ops.legacy.source import Rows, flag, uid, when, words

BATCH = 1_000
DELIVERED = {"success": "succeeded", "succeeded": "succeeded", "delivered": "succeeded", "ok": "succeeded"}


def _at(value: Any) -> datetime:
    return when(value) or datetime.now(UTC)


async def usage_logs(tx: Connection, rows: Rows, report: Report, done: Imported) -> None:
    t = report.tables["usage_logs"]
    await use_schema(tx, "usage")
    records: list[UsageRecord] = []
    for row in rows["usage_logs"]:
        t.read += 1
        legacy_tenant = row.get("tenant_id")
        tenant_id = done.tenants.get(legacy_tenant)
        if legacy_tenant is not None and tenant_id is None:
            t.skip("its tenant was not imported")
            continue
        status = int(row.get("status_code") or 0)
        records.append(
            UsageRecord(
                request_id=f"legacy-{row['id']}",
                at=_at(row.get("created_at")),
                tenant_id=tenant_id,
                user_id=None,
                api_key_id=done.keys.get(row.get("api_key_id")),
                method=str(row.get("method") or "GET"),
                route=str(row.get("path") or "/"),
                status=status,
                latency_ms=float(row.get("response_ms") or 0.0),
                bytes_in=0,
                bytes_out=0,
                ip=str(row["ip"]) if row.get("ip") else None,
                metered=200 <= status < 400,  # what the monolith billed
            )
        )
    for start in range(0, len(records), BATCH):
        chunk = records[start : start + BATCH]
        seen = await usage.existing_request_ids(tx, [r.request_id for r in chunk])
        new = [r for r in chunk if r.request_id not in seen]
        for _ in range(len(chunk) - len(new)):
            t.skip("already imported")
        if new:
            batch: Event[RequestBatch] = new_event(RequestBatch(records=new), tenant_id=None)
            await usage.store_usage(tx, meter([batch]))  # raw rows and every rollup, as live traffic
            t.imported += len(new)


def _details(raw: Any) -> dict[str, Any]:
    if raw is None or raw == "":
        return {}
    try:
        value = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        return {"details": raw}
    return value if isinstance(value, dict) else {"details": value}


async def audit_logs(tx: Connection, rows: Rows, report: Report, done: Imported) -> None:
    t = report.tables["audit_logs"]
    await use_schema(tx, "usage")
    for row in rows["audit_logs"]:
        t.read += 1
        legacy_tenant = row.get("tenant_id")
        tenant_id = done.tenants.get(legacy_tenant)
        if legacy_tenant is not None and tenant_id is None:
            t.skip("its tenant was not imported")
            continue
        user = row.get("user_id")
        entry = AuditRow(
            id=uid("audit", row["id"]),
            tenant_id=tenant_id,
            actor_kind="user" if user is not None else "system",
            actor_id=str(uid("user", user)) if user is not None else None,
            action=f"legacy.{row.get('action') or 'unknown'}",
            target_type=None,
            target_id=None,
            correlation_id=None,
            source_ip=valid_ip(str(row["ip"])) if row.get("ip") else None,
            data=_details(row.get("details")),
            occurred_at=_at(row.get("created_at")),
        )
        if await usage.insert_audit_once(tx, entry):
            t.imported += 1
        else:
            t.skip("already imported")


async def webhooks(tx: Connection, rows: Rows, report: Report, done: Imported, box: SecretBox) -> None:
    t = report.tables["webhooks"]
    await use_schema(tx, "notifier")
    for row in rows["webhooks"]:
        t.read += 1
        tenant_id = done.tenants.get(row.get("tenant_id"))
        if tenant_id is None:
            t.skip("its tenant was not imported")
            continue
        url, secret = str(row.get("url") or ""), str(row.get("secret") or "")
        if not url.startswith(("https://", "http://")):
            t.skip("not an http(s) URL")
            continue
        if not secret:
            t.skip("no signing secret")
            continue
        endpoint_id = uid("webhook", row["id"])
        types = [e for e in words(row.get("events")) if e != "*"]
        added = await notifier.insert_endpoint(
            tx,
            endpoint_id=endpoint_id,
            tenant_id=tenant_id,
            url=url,
            event_types=types or None,
            enabled=row.get("active") is None or flag(row["active"]),
            sealed_secret=box.seal(secret, f"webhook:{endpoint_id}"),
            created_at=_at(row.get("created_at")),
        )
        if added:
            t.imported += 1
        else:
            t.skip("already imported")
        done.webhooks[row["id"]] = (endpoint_id, tenant_id)


async def webhook_deliveries(tx: Connection, rows: Rows, report: Report, done: Imported) -> None:
    t = report.tables["webhook_deliveries"]
    await use_schema(tx, "notifier")
    unsent = 0
    for row in rows["webhook_deliveries"]:
        t.read += 1
        endpoint = done.webhooks.get(row.get("webhook_id"))
        if endpoint is None:
            t.skip("its webhook was not imported")
            continue
        status = DELIVERED.get(str(row.get("status") or "").lower(), "failed")
        legacy_status = str(row.get("status") or "").lower()
        pending = legacy_status not in DELIVERED and legacy_status != "failed"
        payload = row.get("payload") or ""
        code = row.get("response_code")
        added = await notifier.insert_delivery(
            tx,
            delivery_id=uid("delivery", row["id"]),
            tenant_id=endpoint[1],
            endpoint_id=endpoint[0],
            event_id=uid("delivery-event", row["id"]),
            event_type=str(row.get("event_type") or "legacy"),
            payload=payload.encode() if isinstance(payload, str) else bytes(payload),
            status=status,
            attempts=int(row.get("attempts") or 0),
            last_status_code=int(code) if code not in (None, "") else None,
            last_error="not delivered before the import" if pending else None,
            created_at=_at(row.get("created_at")),
        )
        if added:
            t.imported += 1
            unsent += pending
        else:
            t.skip("already imported")
    if unsent:
        report.notes.append(
            f"{unsent} webhook delivery(ies) still pending in the legacy system were imported as failed"
        )
