"""Reading the legacy database (SQLite file or PostgreSQL), and its loosely typed values."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID, uuid5

import asyncpg

TABLES = (
    "tenants",
    "users",
    "subscriptions",
    "api_keys",
    "usage_logs",
    "audit_logs",
    "webhooks",
    "webhook_deliveries",
)
# Platform ids derive from legacy ids, so a second run maps every row to the same id.
NAMESPACE = UUID("6f1c1d52-8a57-4a3e-9a43-0c3f6c2d7e11")

Rows = dict[str, list[dict[str, Any]]]


class LegacyError(Exception):
    pass


def uid(kind: str, legacy_id: Any) -> UUID:
    return uuid5(NAMESPACE, f"{kind}:{legacy_id}")


async def read_all(url: str) -> Rows:
    if url.startswith("sqlite:///"):
        return _read_sqlite(Path(url.removeprefix("sqlite:///")))
    if url.startswith(("postgresql://", "postgres://")):
        return await _read_postgres(url)
    raise LegacyError("--source must be sqlite:///PATH or postgresql://USER@HOST/DATABASE")


def _read_sqlite(path: Path) -> Rows:
    if not path.is_file():
        raise LegacyError(f"no SQLite database at {path}")
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    try:
        found: Rows = {}
        for table in TABLES:
            try:
                found[table] = [dict(r) for r in conn.execute(f"SELECT * FROM {table} ORDER BY id")]
            except sqlite3.OperationalError as exc:
                raise LegacyError(f"legacy table {table}: {exc}") from None
        return found
    finally:
        conn.close()


async def _read_postgres(url: str) -> Rows:
    conn = await asyncpg.connect(url)
    try:
        found: Rows = {}
        for table in TABLES:
            try:
                found[table] = [dict(r) for r in await conn.fetch(f"SELECT * FROM {table} ORDER BY id")]
            except asyncpg.UndefinedTableError:
                raise LegacyError(f"legacy table {table} does not exist") from None
        return found
    finally:
        await conn.close()


def when(value: Any) -> datetime | None:
    """SQLite keeps times as text; naive times are UTC."""
    if value is None or value == "":
        return None
    at = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at


def flag(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "t", "true", "yes", "y")
    return bool(value)


def words(value: Any) -> list[str]:
    """A comma-separated text column (or a Postgres array) as a list."""
    if value is None:
        return []
    items = value if isinstance(value, list) else str(value).split(",")
    return [str(i).strip() for i in items if str(i).strip()]
