"""Emails, their attempts and the suppression list."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import msgspec

from shared.db import Connection


class EmailRow(msgspec.Struct, frozen=True):
    id: UUID
    tenant_id: UUID | None
    source_event_id: UUID
    template: str
    recipient: str
    message: str | None
    status: str
    attempts: int


class EmailView(msgspec.Struct, frozen=True):
    """What a tenant admin sees in the email log (never the body: it may hold a reset link)."""

    id: UUID
    template: str
    recipient: str
    subject: str
    status: str
    attempts: int
    last_code: int | None
    last_error: str | None
    created_at: datetime
    sent_at: datetime | None


async def insert(
    tx: Connection,
    *,
    email_id: UUID,
    tenant_id: UUID | None,
    source_event_id: UUID,
    source_event_type: str,
    template: str,
    recipient: str,
    subject: str,
    message: str,
) -> bool:
    """False when this (event, template, recipient) already has its email."""
    inserted = await tx.fetchval(
        "INSERT INTO emails (id, tenant_id, source_event_id, source_event_type, template, recipient,"
        " subject, message) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        " ON CONFLICT ON CONSTRAINT emails_once DO NOTHING RETURNING true",
        email_id,
        tenant_id,
        source_event_id,
        source_event_type,
        template,
        recipient,
        subject,
        message,
    )
    return bool(inserted)


async def claim_unqueued(tx: Connection, limit: int) -> list[UUID]:
    """Mark new emails as handed to the job queue; the caller enqueues them after commit."""
    rows = await tx.fetch(
        "UPDATE emails SET enqueued_at = now() WHERE id IN (SELECT id FROM emails"
        " WHERE status = 'queued' AND enqueued_at IS NULL ORDER BY created_at LIMIT $1"
        " FOR UPDATE SKIP LOCKED) RETURNING id",
        limit,
    )
    return [r["id"] for r in rows]


async def stale_queued(tx: Connection, older_than_s: float, limit: int) -> list[UUID]:
    """Queued emails enqueued long ago: their job may be gone (crash between commit and enqueue)."""
    rows = await tx.fetch(
        "SELECT id FROM emails WHERE status = 'queued' AND enqueued_at < now() - make_interval(secs => $1)"
        " AND updated_at < now() - make_interval(secs => $1) ORDER BY created_at LIMIT $2",
        older_than_s,
        limit,
    )
    return [r["id"] for r in rows]


async def get(conn: Connection, email_id: UUID) -> EmailRow | None:
    row = await conn.fetchrow(
        "SELECT id, tenant_id, source_event_id, template, recipient, message, status, attempts"
        " FROM emails WHERE id = $1",
        email_id,
    )
    return EmailRow(**dict(row)) if row else None


async def record_attempt(
    tx: Connection,
    email_id: UUID,
    attempt: int,
    outcome: str,
    code: int | None,
    detail: str,
    duration_ms: float,
) -> None:
    await tx.execute(
        "INSERT INTO email_attempts (email_id, attempt, outcome, smtp_code, detail, duration_ms)"
        " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (email_id, attempt) DO NOTHING",
        email_id,
        attempt,
        outcome,
        code,
        detail,
        duration_ms,
    )


async def finish(
    tx: Connection, email_id: UUID, status: str, attempts: int, code: int | None, error: str | None
) -> bool:
    """Move a queued email to its final state and drop its body; False if it was already final."""
    done = await tx.fetchval(
        "UPDATE emails SET status = $2, attempts = $3, last_code = $4, last_error = $5, message = NULL,"
        " sent_at = CASE WHEN $2 = 'sent' THEN now() END, updated_at = now()"
        " WHERE id = $1 AND status = 'queued' RETURNING true",
        email_id,
        status,
        attempts,
        code,
        error,
    )
    return bool(done)


async def note_retry(tx: Connection, email_id: UUID, attempts: int, code: int | None, error: str) -> None:
    await tx.execute(
        "UPDATE emails SET attempts = $2, last_code = $3, last_error = $4, updated_at = now()"
        " WHERE id = $1 AND status = 'queued'",
        email_id,
        attempts,
        code,
        error,
    )


async def is_suppressed(conn: Connection, address: str) -> bool:
    return bool(await conn.fetchval("SELECT true FROM suppressions WHERE address = $1", address))


async def suppress(
    tx: Connection, address: str, reason: str, code: int | None, detail: str, email_id: UUID
) -> None:
    await tx.execute(
        "INSERT INTO suppressions (address, reason, smtp_code, detail, source_email_id)"
        " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (address) DO NOTHING",
        address,
        reason,
        code,
        detail,
        email_id,
    )


async def list_for_tenant(
    conn: Connection, tenant_id: UUID, limit: int, status: str | None
) -> list[EmailView]:
    rows = await conn.fetch(
        "SELECT id, template, recipient, subject, status, attempts, last_code, last_error, created_at,"
        " sent_at FROM emails WHERE tenant_id = $1 AND ($3::text IS NULL OR status = $3)"
        " ORDER BY created_at DESC LIMIT $2",
        tenant_id,
        limit,
        status,
    )
    return [EmailView(**dict(r)) for r in rows]


async def prune(conn: Connection, keep_days: int) -> None:
    await conn.execute(
        "DELETE FROM emails WHERE created_at < now() - make_interval(days => $1) AND status <> 'queued'",
        keep_days,
    )
