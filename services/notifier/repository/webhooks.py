"""Webhook endpoints, deliveries and attempts; every tenant-facing query is scoped by tenant."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec

from shared.db import Connection

_ENDPOINT_COLUMNS = (
    "id, tenant_id, url, description, event_types, enabled, disabled_reason, disabled_at,"
    " failing_since, created_at, updated_at"
)
_DELIVERY_COLUMNS = (
    "id, endpoint_id, event_id, event_type, status, attempts, next_attempt_at, last_status_code,"
    " last_error, created_at, completed_at"
)


class Endpoint(msgspec.Struct, frozen=True):
    id: UUID
    tenant_id: UUID
    url: str
    description: str
    event_types: list[str] | None
    enabled: bool
    disabled_reason: str | None
    disabled_at: datetime | None
    failing_since: datetime | None
    created_at: datetime
    updated_at: datetime


class Delivery(msgspec.Struct, frozen=True):
    id: UUID
    endpoint_id: UUID
    event_id: UUID
    event_type: str
    status: str
    attempts: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    completed_at: datetime | None


class Attempt(msgspec.Struct, frozen=True):
    id: int
    trigger: str
    at: datetime
    status_code: int | None
    response_body: str
    error: str | None
    duration_ms: float


class Work(msgspec.Struct, frozen=True):
    """What a delivery job needs: the delivery, its endpoint and the sealed secrets."""

    id: UUID
    tenant_id: UUID
    endpoint_id: UUID
    event_id: UUID
    payload: bytes
    status: str
    attempts: int
    url: str
    enabled: bool
    secret: str
    previous_secret: str | None
    previous_secret_expires_at: datetime | None


class Subscription(msgspec.Struct, frozen=True):
    id: UUID
    event_types: list[str] | None


def _endpoint(row: Any) -> Endpoint:
    return Endpoint(**dict(row))


# --- endpoints ------------------------------------------------------------------------


async def count_endpoints(tx: Connection, tenant_id: UUID) -> int:
    return int(await tx.fetchval("SELECT count(*) FROM webhooks WHERE tenant_id = $1", tenant_id))


async def lock_tenant(tx: Connection, tenant_id: UUID) -> None:
    """Serialises endpoint creation per tenant, so the endpoint limit holds under concurrency."""
    await tx.execute("SELECT pg_advisory_xact_lock(hashtextextended($1::uuid::text, 6))", tenant_id)


async def insert_endpoint(
    tx: Connection,
    endpoint_id: UUID,
    tenant_id: UUID,
    url: str,
    description: str,
    event_types: list[str] | None,
    enabled: bool,
    sealed_secret: str,
) -> Endpoint:
    row = await tx.fetchrow(
        "INSERT INTO webhooks (id, tenant_id, url, description, event_types, enabled, secret)"
        f" VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {_ENDPOINT_COLUMNS}",
        endpoint_id,
        tenant_id,
        url,
        description,
        event_types,
        enabled,
        sealed_secret,
    )
    return _endpoint(row)


async def list_endpoints(tx: Connection, tenant_id: UUID) -> list[Endpoint]:
    rows = await tx.fetch(
        f"SELECT {_ENDPOINT_COLUMNS} FROM webhooks WHERE tenant_id = $1 ORDER BY created_at", tenant_id
    )
    return [_endpoint(r) for r in rows]


async def get_endpoint(tx: Connection, tenant_id: UUID, endpoint_id: UUID) -> Endpoint | None:
    row = await tx.fetchrow(
        f"SELECT {_ENDPOINT_COLUMNS} FROM webhooks WHERE tenant_id = $1 AND id = $2", tenant_id, endpoint_id
    )
    return _endpoint(row) if row else None


async def update_endpoint(
    tx: Connection,
    tenant_id: UUID,
    endpoint_id: UUID,
    url: str,
    description: str,
    event_types: list[str] | None,
    enabled: bool,
) -> Endpoint | None:
    """Enabling an endpoint clears its failure streak and the reason it was disabled."""
    row = await tx.fetchrow(
        "UPDATE webhooks SET url = $3, description = $4, event_types = $5, enabled = $6,"
        " disabled_reason = CASE WHEN $6 THEN NULL ELSE coalesce(disabled_reason, 'disabled by user') END,"
        " disabled_at = CASE WHEN $6 THEN NULL ELSE coalesce(disabled_at, now()) END,"
        " failing_since = CASE WHEN $6 AND NOT enabled THEN NULL ELSE failing_since END,"
        f" updated_at = now() WHERE tenant_id = $1 AND id = $2 RETURNING {_ENDPOINT_COLUMNS}",
        tenant_id,
        endpoint_id,
        url,
        description,
        event_types,
        enabled,
    )
    return _endpoint(row) if row else None


async def delete_endpoint(tx: Connection, tenant_id: UUID, endpoint_id: UUID) -> bool:
    done = await tx.fetchval(
        "DELETE FROM webhooks WHERE tenant_id = $1 AND id = $2 RETURNING true", tenant_id, endpoint_id
    )
    return bool(done)


async def rotate_secret(
    tx: Connection, tenant_id: UUID, endpoint_id: UUID, sealed_secret: str, overlap_s: float
) -> bool:
    done = await tx.fetchval(
        "UPDATE webhooks SET previous_secret = secret, secret = $3,"
        " previous_secret_expires_at = now() + make_interval(secs => $4), updated_at = now()"
        " WHERE tenant_id = $1 AND id = $2 RETURNING true",
        tenant_id,
        endpoint_id,
        sealed_secret,
        overlap_s,
    )
    return bool(done)


async def subscriptions(tx: Connection, tenant_id: UUID) -> list[Subscription]:
    rows = await tx.fetch("SELECT id, event_types FROM webhooks WHERE tenant_id = $1 AND enabled", tenant_id)
    return [Subscription(**dict(r)) for r in rows]


async def endpoint_failed(tx: Connection, endpoint_id: UUID) -> float:
    """Start (or continue) the endpoint's failure streak; returns its length in seconds."""
    seconds = await tx.fetchval(
        "UPDATE webhooks SET failing_since = coalesce(failing_since, now())"
        " WHERE id = $1 RETURNING extract(epoch FROM now() - failing_since)::float8",
        endpoint_id,
    )
    return float(seconds or 0.0)


async def endpoint_succeeded(tx: Connection, endpoint_id: UUID) -> None:
    await tx.execute(
        "UPDATE webhooks SET failing_since = NULL WHERE id = $1 AND failing_since IS NOT NULL", endpoint_id
    )


async def disable_failing(tx: Connection, endpoint_id: UUID, reason: str) -> Endpoint | None:
    """Disable an endpoint that is still enabled; None if another job already did."""
    row = await tx.fetchrow(
        "UPDATE webhooks SET enabled = false, disabled_reason = $2, disabled_at = now(), updated_at = now()"
        f" WHERE id = $1 AND enabled RETURNING {_ENDPOINT_COLUMNS}",
        endpoint_id,
        reason,
    )
    return _endpoint(row) if row else None


# --- deliveries -----------------------------------------------------------------------


async def insert_deliveries(
    tx: Connection,
    rows: list[tuple[UUID, UUID, UUID, UUID, str, bytes]],
) -> None:
    """(id, tenant_id, endpoint_id, event_id, event_type, payload); one per (endpoint, event)."""
    await tx.executemany(
        "INSERT INTO webhook_deliveries (id, tenant_id, endpoint_id, event_id, event_type, payload,"
        " next_attempt_at) VALUES ($1, $2, $3, $4, $5, $6, now())"
        " ON CONFLICT ON CONSTRAINT webhook_deliveries_once DO NOTHING",
        rows,
    )


async def claim_undispatched(tx: Connection, limit: int) -> list[tuple[UUID, int, datetime]]:
    """Deliveries whose next attempt has no job yet: (id, attempt number, when it is due)."""
    rows = await tx.fetch(
        "UPDATE webhook_deliveries SET enqueued_attempt = attempts + 1 WHERE id IN ("
        " SELECT id FROM webhook_deliveries WHERE status = 'pending' AND enqueued_attempt <= attempts"
        " ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED)"
        " RETURNING id, enqueued_attempt, next_attempt_at",
        limit,
    )
    return [(r["id"], r["enqueued_attempt"], r["next_attempt_at"]) for r in rows]


async def overdue(tx: Connection, older_than_s: float, limit: int) -> list[tuple[UUID, int, datetime]]:
    """Attempts due long ago and still not made: their job may have been lost."""
    rows = await tx.fetch(
        "SELECT id, enqueued_attempt, next_attempt_at FROM webhook_deliveries WHERE status = 'pending'"
        " AND enqueued_attempt = attempts + 1 AND next_attempt_at < now() - make_interval(secs => $1)"
        " ORDER BY next_attempt_at LIMIT $2",
        older_than_s,
        limit,
    )
    return [(r["id"], r["enqueued_attempt"], r["next_attempt_at"]) for r in rows]


async def work(conn: Connection, delivery_id: UUID) -> Work | None:
    row = await conn.fetchrow(
        "SELECT d.id, d.tenant_id, d.endpoint_id, d.event_id, d.payload, d.status, d.attempts, w.url,"
        " w.enabled, w.secret, w.previous_secret, w.previous_secret_expires_at"
        " FROM webhook_deliveries d JOIN webhooks w ON w.id = d.endpoint_id WHERE d.id = $1",
        delivery_id,
    )
    return Work(**dict(row)) if row else None


async def record_attempt(
    tx: Connection,
    delivery_id: UUID,
    tenant_id: UUID,
    trigger: str,
    status_code: int | None,
    response_body: str,
    error: str | None,
    duration_ms: float,
) -> None:
    await tx.execute(
        "INSERT INTO webhook_attempts (delivery_id, tenant_id, trigger, status_code, response_body, error,"
        " duration_ms) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        delivery_id,
        tenant_id,
        trigger,
        status_code,
        response_body,
        error,
        duration_ms,
    )


async def succeeded(tx: Connection, delivery_id: UUID, attempts: int | None, status_code: int) -> None:
    """`attempts` is the scheduled attempt just made, or None for a manual one (schedule unchanged)."""
    await tx.execute(
        "UPDATE webhook_deliveries SET status = 'succeeded', attempts = coalesce($2, attempts),"
        " last_status_code = $3, last_error = NULL, next_attempt_at = NULL, completed_at = now(),"
        " updated_at = now() WHERE id = $1",
        delivery_id,
        attempts,
        status_code,
    )


async def scheduled_failed(
    tx: Connection,
    delivery_id: UUID,
    attempt: int,
    status_code: int | None,
    error: str,
    retry_in: float | None,
) -> bool:
    """Record a failed scheduled attempt; with `retry_in` the next one is due then (and will be
    enqueued by the caller), without it the delivery has failed for good. False if stale."""
    done = await tx.fetchval(
        "UPDATE webhook_deliveries SET attempts = $2, last_status_code = $3, last_error = $4,"
        " status = CASE WHEN $5::float8 IS NULL THEN 'failed' ELSE 'pending' END,"
        " next_attempt_at = CASE WHEN $5::float8 IS NULL THEN NULL"
        " ELSE now() + make_interval(secs => $5::float8) END,"
        " enqueued_attempt = CASE WHEN $5::float8 IS NULL THEN enqueued_attempt ELSE $2 + 1 END,"
        " completed_at = CASE WHEN $5::float8 IS NULL THEN now() END, updated_at = now()"
        " WHERE id = $1 AND status = 'pending' AND attempts = $2 - 1 RETURNING true",
        delivery_id,
        attempt,
        status_code,
        error,
        retry_in,
    )
    return bool(done)


async def manual_failed(tx: Connection, delivery_id: UUID, status_code: int | None, error: str) -> None:
    await tx.execute(
        "UPDATE webhook_deliveries SET last_status_code = $2, last_error = $3, updated_at = now()"
        " WHERE id = $1",
        delivery_id,
        status_code,
        error,
    )


async def give_up(tx: Connection, delivery_id: UUID, error: str) -> None:
    await tx.execute(
        "UPDATE webhook_deliveries SET status = 'failed', last_error = $2, next_attempt_at = NULL,"
        " completed_at = now(), updated_at = now() WHERE id = $1 AND status = 'pending'",
        delivery_id,
        error,
    )


async def list_deliveries(
    tx: Connection,
    tenant_id: UUID,
    endpoint_id: UUID,
    limit: int,
    status: str | None,
    before: datetime | None,
) -> list[Delivery]:
    rows = await tx.fetch(
        f"SELECT {_DELIVERY_COLUMNS} FROM webhook_deliveries WHERE tenant_id = $1 AND endpoint_id = $2"
        " AND ($4::text IS NULL OR status = $4) AND ($5::timestamptz IS NULL OR created_at < $5)"
        " ORDER BY created_at DESC LIMIT $3",
        tenant_id,
        endpoint_id,
        limit,
        status,
        before,
    )
    return [Delivery(**dict(r)) for r in rows]


async def get_delivery(
    tx: Connection, tenant_id: UUID, endpoint_id: UUID, delivery_id: UUID
) -> Delivery | None:
    row = await tx.fetchrow(
        f"SELECT {_DELIVERY_COLUMNS} FROM webhook_deliveries"
        " WHERE tenant_id = $1 AND endpoint_id = $2 AND id = $3",
        tenant_id,
        endpoint_id,
        delivery_id,
    )
    return Delivery(**dict(row)) if row else None


async def attempts_of(tx: Connection, tenant_id: UUID, delivery_id: UUID) -> list[Attempt]:
    rows = await tx.fetch(
        "SELECT id, trigger, at, status_code, response_body, error, duration_ms FROM webhook_attempts"
        " WHERE tenant_id = $1 AND delivery_id = $2 ORDER BY id",
        tenant_id,
        delivery_id,
    )
    return [Attempt(**dict(r)) for r in rows]


async def prune(conn: Connection, keep_days: int) -> None:
    await conn.execute(
        "DELETE FROM webhook_deliveries WHERE created_at < now() - make_interval(days => $1)"
        " AND status <> 'pending'",
        keep_days,
    )
