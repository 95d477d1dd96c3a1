"""Audit log export as CSV or NDJSON, streamed in keyset batches: memory stays bounded.

Each batch is read on a connection borrowed for that one query, so a slow client holds no
connection and no transaction open while it reads.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from uuid import UUID

import msgspec

from services.usage import repository
from services.usage.models import AuditEntry, AuditFilter, ExportFormat
from shared.db import Pool

CSV_COLUMNS = (
    "id",
    "occurred_at",
    "action",
    "tenant_id",
    "actor_kind",
    "actor_id",
    "target_type",
    "target_id",
    "correlation_id",
    "source_ip",
    "data",
)
MEDIA_TYPES = {"csv": "text/csv; charset=utf-8", "ndjson": "application/x-ndjson"}
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_encoder = msgspec.json.Encoder()


def filename(tenant_id: UUID, fmt: ExportFormat, now: datetime | None = None) -> str:
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    return f"audit-logs-{tenant_id}-{stamp}.{fmt}"


async def export_audit(
    pool: Pool, tenant_id: UUID, where: AuditFilter, fmt: ExportFormat, batch_rows: int
) -> AsyncIterator[bytes]:
    """Oldest first; without `to`, stops at the moment the export started (a fixed end)."""
    if where.end is None:
        where = msgspec.structs.replace(where, end=datetime.now(UTC))
    if fmt == "csv":
        yield _csv([CSV_COLUMNS])
    after: tuple[datetime, UUID] | None = None
    while True:
        async with pool.acquire() as conn:
            rows = await repository.list_audit(conn, tenant_id, where, after, batch_rows, newest_first=False)
        if not rows:
            return
        yield _csv([_csv_row(r) for r in rows]) if fmt == "csv" else _ndjson(rows)
        if len(rows) < batch_rows:
            return
        after = (rows[-1].occurred_at, rows[-1].id)


def _ndjson(rows: list[AuditEntry]) -> bytes:
    buf = bytearray()
    for row in rows:
        _encoder.encode_into(row, buf, len(buf))
        buf += b"\n"
    return bytes(buf)


def _csv_row(r: AuditEntry) -> tuple[str, ...]:
    return (
        str(r.id),
        r.occurred_at.isoformat(),
        _cell(r.action),
        str(r.tenant_id or ""),
        _cell(r.actor.kind),
        _cell(r.actor.id or ""),
        _cell(r.target.type if r.target else ""),
        _cell(r.target.id if r.target else ""),
        _cell(r.correlation_id or ""),
        r.source_ip or "",
        _cell(_encoder.encode(r.data).decode()),
    )


def _cell(value: str) -> str:
    """Spreadsheets run cells that start like a formula; a leading quote keeps them text."""
    return "'" + value if value.startswith(_FORMULA_START) else value


def _csv(rows: list[tuple[str, ...]]) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(rows)
    return out.getvalue().encode()
