"""Every SQL statement of the usage service."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, get_args
from uuid import UUID

import msgspec

from services.usage.metering import COPY_COLUMNS, Metered
from services.usage.models import (
    NO_KEY,
    AuditActor,
    AuditEntry,
    AuditFilter,
    AuditRow,
    AuditTarget,
    Granularity,
    GroupBy,
    KeyUse,
    UsageBucket,
)
from shared.db import Connection
from shared.events import ActorKind

ACTOR_KINDS = frozenset(get_args(ActorKind))

# --- ingestion ------------------------------------------------------------------------------

_ROLLUP_SET = (
    " calls = r.calls + EXCLUDED.calls,"
    " metered_calls = r.metered_calls + EXCLUDED.metered_calls,"
    " client_errors = r.client_errors + EXCLUDED.client_errors,"
    " server_errors = r.server_errors + EXCLUDED.server_errors,"
    " latency_ms_sum = r.latency_ms_sum + EXCLUDED.latency_ms_sum,"
    " latency_ms_max = GREATEST(r.latency_ms_max, EXCLUDED.latency_ms_max),"
    " bytes_in = r.bytes_in + EXCLUDED.bytes_in,"
    " bytes_out = r.bytes_out + EXCLUDED.bytes_out"
)


def _rollup_upsert(table: str, time_column: str, time_type: str) -> str:
    types = ("uuid", time_type, "text", "uuid", *["bigint"] * 4, "float8", "real", "bigint", "bigint")
    params = ", ".join(f"${i}::{t}[]" for i, t in enumerate(types, 1))
    return (
        f"INSERT INTO {table} AS r SELECT * FROM unnest({params})"
        f" ON CONFLICT (tenant_id, {time_column}, route, api_key_id) DO UPDATE SET{_ROLLUP_SET}"
    )


_UPSERT_HOURLY = _rollup_upsert("usage_hourly", "bucket", "timestamptz")
_UPSERT_DAILY = _rollup_upsert("usage_daily", "day", "date")


async def store_usage(tx: Connection, metered: Metered) -> None:
    """Raw rows by COPY, then every rollup; the caller's transaction makes it all or nothing."""
    if metered.rows:
        await tx.copy_records_to_table("usage_logs", records=metered.rows, columns=COPY_COLUMNS)
    if metered.hourly:
        await tx.execute(_UPSERT_HOURLY, *_columns(metered.hourly, 12))
        await tx.execute(_UPSERT_DAILY, *_columns(metered.daily, 12))
        await tx.execute(
            "INSERT INTO usage_monthly AS m"
            " SELECT * FROM unnest($1::uuid[], $2::date[], $3::bigint[], $4::bigint[])"
            " ON CONFLICT (tenant_id, month) DO UPDATE"
            " SET calls = m.calls + EXCLUDED.calls, metered_calls = m.metered_calls + EXCLUDED.metered_calls",
            *_columns(metered.monthly, 4),
        )
    if metered.keys:
        await tx.execute(
            "INSERT INTO api_key_usage AS k (api_key_id, tenant_id, last_used_at)"
            " SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::timestamptz[])"
            " ON CONFLICT (api_key_id) DO UPDATE SET"
            " last_used_at = GREATEST(k.last_used_at, EXCLUDED.last_used_at)",
            *_columns(metered.keys, 3),
        )


def _columns(rows: list[Any], width: int) -> list[list[Any]]:
    """Row-major records (tuples or array_like Structs) → one array per column for unnest."""
    if not rows:
        return [[] for _ in range(width)]
    tuples = rows if isinstance(rows[0], tuple) else [msgspec.structs.astuple(r) for r in rows]
    return [list(col) for col in zip(*tuples, strict=True)]


async def take_unpublished_key_usage(tx: Connection, limit: int) -> list[KeyUse]:
    """Mark key uses as published and return them; the caller adds the events in the same tx."""
    rows = await tx.fetch(
        "UPDATE api_key_usage SET published_at = last_used_at WHERE api_key_id IN ("
        " SELECT api_key_id FROM api_key_usage"
        " WHERE published_at IS NULL OR published_at < last_used_at"
        " ORDER BY api_key_id LIMIT $1 FOR UPDATE SKIP LOCKED)"
        " RETURNING api_key_id, tenant_id, last_used_at",
        limit,
    )
    return [KeyUse(r["api_key_id"], r["tenant_id"], r["last_used_at"]) for r in rows]


async def prune_usage_logs(conn: Connection, cutoff: datetime, chunk: int) -> int:
    """Delete up to `chunk` raw rows older than `cutoff` (short transactions, short locks)."""
    status = await conn.execute(
        "DELETE FROM usage_logs WHERE ctid = ANY(ARRAY( SELECT ctid FROM usage_logs WHERE at < $1 LIMIT $2))",
        cutoff,
        chunk,
    )
    return int(status.split()[-1])


# --- usage reads ----------------------------------------------------------------------------

_DIMENSION = {None: ("", ""), "route": (", route", ", route"), "key": (", api_key_id", ", api_key_id")}
_SUMS = (
    "sum(calls)::bigint AS calls, sum(metered_calls)::bigint AS metered_calls,"
    " sum(client_errors)::bigint AS client_errors,"
    " sum(server_errors)::bigint AS server_errors, sum(latency_ms_sum) AS latency_ms_sum,"
    " max(latency_ms_max) AS latency_ms_max, sum(bytes_in)::bigint AS bytes_in,"
    " sum(bytes_out)::bigint AS bytes_out"
)


async def usage_buckets(
    tx: Connection,
    tenant_id: UUID,
    start: datetime,
    end: datetime,
    granularity: Granularity,
    group_by: GroupBy | None,
) -> list[UsageBucket]:
    select, group = _DIMENSION[group_by]
    if granularity == "hour":
        sql = (
            f"SELECT bucket AS start{select}, {_SUMS} FROM usage_hourly"
            " WHERE tenant_id = $1 AND bucket >= $2 AND bucket < $3"
            f" GROUP BY bucket{group} ORDER BY bucket{group}"
        )
        rows = await tx.fetch(sql, tenant_id, start, end)
    else:
        sql = (
            f"SELECT (day::timestamp AT TIME ZONE 'UTC') AS start{select}, {_SUMS} FROM usage_daily"
            " WHERE tenant_id = $1 AND day >= $2 AND day < $3"
            f" GROUP BY day{group} ORDER BY day{group}"
        )
        rows = await tx.fetch(sql, tenant_id, start.date(), end.date())
    return [_bucket(r, group_by) for r in rows]


def _bucket(r: Any, group_by: GroupBy | None) -> UsageBucket:
    key = r["api_key_id"] if group_by == "key" else None
    return UsageBucket(
        start=r["start"],
        route=r["route"] if group_by == "route" else None,
        api_key_id=None if key == NO_KEY else key,
        calls=r["calls"],
        metered_calls=r["metered_calls"],
        client_errors=r["client_errors"],
        server_errors=r["server_errors"],
        avg_latency_ms=round(r["latency_ms_sum"] / r["calls"], 3) if r["calls"] else 0.0,
        max_latency_ms=round(float(r["latency_ms_max"]), 3),
        bytes_in=r["bytes_in"],
        bytes_out=r["bytes_out"],
    )


async def monthly_metered_calls(tx: Connection, tenant_id: UUID, month: date) -> int:
    calls = await tx.fetchval(
        "SELECT metered_calls FROM usage_monthly WHERE tenant_id = $1 AND month = $2", tenant_id, month
    )
    return int(calls or 0)


# --- quota rebuild --------------------------------------------------------------------------


async def latest_beat(conn: Connection) -> int | None:
    value = await conn.fetchval("SELECT max(seen_ms) FROM quota_beats")
    return int(value) if value is not None else None


async def beat_after(conn: Connection, after_ms: int) -> int | None:
    value = await conn.fetchval("SELECT min(seen_ms) FROM quota_beats WHERE seen_ms > $1", after_ms)
    return int(value) if value is not None else None


async def record_beat(conn: Connection, slot: int, seen_ms: int) -> None:
    await conn.execute(
        "INSERT INTO quota_beats AS b (slot, seen_ms) VALUES ($1, $2)"
        " ON CONFLICT (slot) DO UPDATE SET seen_ms = GREATEST(b.seen_ms, EXCLUDED.seen_ms)",
        slot,
        seen_ms,
    )


async def monthly_by_tenant(conn: Connection, month: date) -> dict[UUID, int]:
    """Metered calls (those the gateway counted) per tenant in `month`."""
    rows = await conn.fetch("SELECT tenant_id, metered_calls FROM usage_monthly WHERE month = $1", month)
    return {r["tenant_id"]: int(r["metered_calls"]) for r in rows}


async def hourly_metered_between(conn: Connection, start: datetime, end: datetime) -> dict[UUID, int]:
    rows = await conn.fetch(
        "SELECT tenant_id, sum(metered_calls)::bigint AS n FROM usage_hourly"
        " WHERE bucket >= $1 AND bucket < $2 GROUP BY tenant_id",
        start,
        end,
    )
    return {r["tenant_id"]: int(r["n"]) for r in rows}


async def raw_metered_between(conn: Connection, start: datetime, end: datetime) -> dict[UUID, int]:
    rows = await conn.fetch(
        "SELECT tenant_id, count(*) AS n FROM usage_logs"
        " WHERE at >= $1 AND at < $2 AND metered AND tenant_id IS NOT NULL GROUP BY tenant_id",
        start,
        end,
    )
    return {r["tenant_id"]: int(r["n"]) for r in rows}


# --- audit ----------------------------------------------------------------------------------

_AUDIT_COLUMNS = (
    "id, occurred_at, action, tenant_id, actor_kind, actor_id, target_type, target_id,"
    " correlation_id, host(source_ip) AS source_ip, data"
)


async def insert_audit(tx: Connection, rows: list[AuditRow]) -> None:
    await tx.executemany(
        "INSERT INTO audit_logs (id, tenant_id, actor_kind, actor_id, action, target_type, target_id,"
        " correlation_id, source_ip, data, occurred_at)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT (id) DO NOTHING",
        [msgspec.structs.astuple(row) for row in rows],
    )


async def get_audit(tx: Connection, event_id: UUID) -> AuditEntry | None:
    row = await tx.fetchrow(f"SELECT {_AUDIT_COLUMNS} FROM audit_logs WHERE id = $1", event_id)
    return _entry(row) if row else None


async def list_audit(
    conn: Connection,
    tenant_id: UUID,
    where: AuditFilter,
    after: tuple[datetime, UUID] | None,
    limit: int,
    *,
    newest_first: bool,
) -> list[AuditEntry]:
    """One keyset page of a tenant's audit log in (occurred_at, id) order."""
    conditions = ["tenant_id = $1"]
    args: list[Any] = [tenant_id]

    def arg(value: Any) -> str:
        args.append(value)
        return f"${len(args)}"

    if where.actor is not None:
        column = "actor_kind" if where.actor in ACTOR_KINDS else "actor_id"
        conditions.append(f"{column} = {arg(where.actor)}")
    if where.action is not None:
        if where.action.endswith("*"):
            conditions.append(f"starts_with(action, {arg(where.action[:-1])})")
        else:
            conditions.append(f"action = {arg(where.action)}")
    if where.start is not None:
        conditions.append(f"occurred_at >= {arg(where.start)}")
    if where.end is not None:
        conditions.append(f"occurred_at < {arg(where.end)}")
    if after is not None:
        op = "<" if newest_first else ">"
        conditions.append(f"(occurred_at, id) {op} ({arg(after[0])}, {arg(after[1])})")
    order = "DESC" if newest_first else "ASC"
    sql = (
        f"SELECT {_AUDIT_COLUMNS} FROM audit_logs WHERE {' AND '.join(conditions)}"
        f" ORDER BY occurred_at {order}, id {order} LIMIT {arg(limit)}"
    )
    return [_entry(r) for r in await conn.fetch(sql, *args)]


def _entry(r: Any) -> AuditEntry:
    target = AuditTarget(type=r["target_type"], id=r["target_id"]) if r["target_type"] else None
    return AuditEntry(
        id=r["id"],
        occurred_at=r["occurred_at"],
        action=r["action"],
        tenant_id=r["tenant_id"],
        actor=AuditActor(kind=r["actor_kind"], id=r["actor_id"]),
        target=target,
        correlation_id=r["correlation_id"],
        source_ip=r["source_ip"],
        data=r["data"],
    )


# --- legacy import (`catalytic import-legacy`) ----------------------------------------------


async def existing_request_ids(conn: Connection, request_ids: list[str]) -> set[str]:
    rows = await conn.fetch(
        "SELECT request_id FROM usage_logs WHERE request_id = ANY($1::text[])", request_ids
    )
    return {r["request_id"] for r in rows}


async def insert_audit_once(tx: Connection, row: AuditRow) -> bool:
    """insert_audit that says whether the row is new."""
    found = await tx.fetchrow(
        "INSERT INTO audit_logs (id, tenant_id, actor_kind, actor_id, action, target_type, target_id,"
        " correlation_id, source_ip, data, occurred_at)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT (id) DO NOTHING RETURNING id",
        *msgspec.structs.astuple(row),
    )
    return found is not None
