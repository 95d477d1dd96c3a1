"""Webhook endpoints and their delivery log brought over from the legacy monolith."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from shared.db import Connection


async def insert_endpoint(
    tx: Connection,
    *,
    endpoint_id: UUID,
    tenant_id: UUID,
    url: str,
    event_types: list[str] | None,
    enabled: bool,
    sealed_secret: str,
    created_at: datetime,
) -> bool:
    row = await tx.fetchrow(
        "INSERT INTO webhooks (id, tenant_id, url, description, event_types, enabled, disabled_reason,"
        " disabled_at, secret, created_at, updated_at) VALUES ($1, $2, $3, 'imported', $4, $5,"
        " CASE WHEN $5 THEN NULL ELSE 'disabled before the import' END,"
        " CASE WHEN $5 THEN NULL ELSE $7::timestamptz END,"
        " $6, $7, $7) ON CONFLICT (id) DO NOTHING RETURNING id",
        endpoint_id,
        tenant_id,
        url,
        event_types,
        enabled,
        sealed_secret,
        created_at,
    )
    return row is not None


async def insert_delivery(
    tx: Connection,
    *,
    delivery_id: UUID,
    tenant_id: UUID,
    endpoint_id: UUID,
    event_id: UUID,
    event_type: str,
    payload: bytes,
    status: str,
    attempts: int,
    last_status_code: int | None,
    last_error: str | None,
    created_at: datetime,
) -> bool:
    """Final rows only (succeeded or failed), so the dispatcher never sends a legacy payload."""
    row = await tx.fetchrow(
        "INSERT INTO webhook_deliveries (id, tenant_id, endpoint_id, event_id, event_type, payload, status,"
        " attempts, enqueued_attempt, last_status_code, last_error, created_at, updated_at, completed_at)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9, $10, $11, $11, $11)"
        " ON CONFLICT DO NOTHING RETURNING id",
        delivery_id,
        tenant_id,
        endpoint_id,
        event_id,
        event_type,
        payload,
        status,
        attempts,
        last_status_code,
        last_error,
        created_at,
    )
    return row is not None
