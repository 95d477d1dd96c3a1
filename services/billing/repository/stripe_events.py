"""Received Stripe events, and the notices that make each announced fact announced once."""

from __future__ import annotations

from datetime import datetime

from services.billing.models import StoredEvent
from shared.db import Connection

# --- notices: each announced fact once -------------------------------------------------------


async def first_notice(tx: Connection, kind: str, ref: str) -> bool:
    """Record that `kind` was announced for `ref`; False if it already was."""
    status = await tx.execute(
        "INSERT INTO notices (kind, ref) VALUES ($1, $2) ON CONFLICT DO NOTHING", kind, ref
    )
    return status.endswith(" 1")


# --- received Stripe events ------------------------------------------------------------------


async def store_event(
    tx: Connection, *, event_id: str, type_: str, livemode: bool, created: datetime, payload: bytes
) -> bool:
    """Keep a verified event once; False when this id was already received."""
    status = await tx.execute(
        "INSERT INTO stripe_events (id, type, livemode, stripe_created, payload) VALUES ($1, $2, $3, $4, $5)"
        " ON CONFLICT (id) DO NOTHING",
        event_id,
        type_,
        livemode,
        created,
        payload,
    )
    return status.endswith(" 1")


async def claim_event(tx: Connection) -> StoredEvent | None:
    """The oldest due event nobody else is working on, locked until `tx` ends."""
    row = await tx.fetchrow(
        "SELECT id, type, payload, attempts FROM stripe_events"
        " WHERE status = 'pending' AND next_attempt_at <= now()"
        " ORDER BY next_attempt_at, stripe_created, id LIMIT 1 FOR UPDATE SKIP LOCKED"
    )
    return StoredEvent(**dict(row)) if row is not None else None


async def finish_event(tx: Connection, event_id: str, status: str, note: str | None = None) -> None:
    await tx.execute(
        "UPDATE stripe_events SET status = $2, last_error = $3, processed_at = now(),"
        " attempts = attempts + 1 WHERE id = $1",
        event_id,
        status,
        note,
    )


async def postpone_event(conn: Connection, event_id: str, error: str, delay_s: float, give_up: bool) -> None:
    await conn.execute(
        "UPDATE stripe_events SET attempts = attempts + 1, last_error = $2,"
        " next_attempt_at = clock_timestamp() + make_interval(secs => $3),"
        " status = CASE WHEN $4 THEN 'failed' ELSE status END,"
        " processed_at = CASE WHEN $4 THEN now() ELSE processed_at END WHERE id = $1 AND status = 'pending'",
        event_id,
        error[:1000],
        delay_s,
        give_up,
    )


async def next_due_in(conn: Connection) -> float | None:
    """Seconds until the next pending event is due (0 if one is due now), None if none is pending."""
    value = await conn.fetchval(
        "SELECT greatest(0, extract(epoch FROM min(next_attempt_at) - now()))::float8"
        " FROM stripe_events WHERE status = 'pending'"
    )
    return float(value) if value is not None else None


async def prune_events(conn: Connection, keep_days: int) -> int:
    status = await conn.execute(
        "DELETE FROM stripe_events WHERE status <> 'pending'"
        " AND processed_at < now() - make_interval(days => $1)",
        keep_days,
    )
    return int(status.split()[-1])
