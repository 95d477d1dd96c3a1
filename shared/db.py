"""Postgres access: one asyncpg pool per service, pinned to the service's schema."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, TypeAlias

import asyncpg
import msgspec
from asyncpg.pool import PoolConnectionProxy

# What handlers and repositories receive: a plain connection or one borrowed from a pool.
# Litestar resolves handler annotations at runtime, so the runtime alias must be real classes.
if TYPE_CHECKING:
    Connection: TypeAlias = asyncpg.Connection[asyncpg.Record] | PoolConnectionProxy[asyncpg.Record]
    Pool: TypeAlias = asyncpg.Pool[asyncpg.Record]
else:
    Connection = Any  # msgspec (Litestar's signature model) rejects unions of classes
    Pool = asyncpg.Pool


# Postgres unreachable, restarting or shutting down: worth a retry or a 503, unlike a query's
# own error (OSError covers refused connections and timeouts).
UNAVAILABLE: tuple[type[Exception], ...] = (
    OSError,
    asyncpg.InterfaceError,
    asyncpg.PostgresConnectionError,
    asyncpg.OperatorInterventionError,
)


async def _init_connection(conn: Any) -> None:
    # jsonb columns round-trip through msgspec: faster than json and keeps Structs encodable.
    await conn.set_type_codec(
        "jsonb",
        schema="pg_catalog",
        encoder=lambda value: msgspec.json.encode(value).decode(),
        decoder=msgspec.json.decode,
        format="text",
    )


async def _reset(conn: Any) -> None:
    """Runs when a connection goes back to the pool, after asyncpg rolled back any open transaction.

    asyncpg's default reset sends `pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL`,
    one more round trip on every release (every request, consumer batch and relay pass). Pool
    connections keep no session state: locks are transaction-scoped, settings `SET LOCAL`, no
    cursors outlive a transaction, and code that LISTENs on a pooled connection UNLISTENs it
    before release (release_listener)."""


async def release_listener(pool: Pool, conn: Any) -> None:
    """Give back a connection that LISTENed: the pool's reset no longer sends UNLISTEN."""
    try:
        await conn.execute("UNLISTEN *")
    finally:
        await pool.release(conn)


async def create_pool(
    dsn: str, *, schema: str, application_name: str, min_size: int = 1, max_size: int = 10
) -> Pool:
    """A pool whose connections see only `schema` (plus pg_catalog) on their search path."""
    pool = await asyncpg.create_pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        init=_init_connection,
        reset=_reset,
        server_settings={"search_path": schema, "application_name": application_name},
        command_timeout=30,
    )
    assert pool is not None
    return pool


@asynccontextmanager
async def transaction(pool: Pool) -> AsyncIterator[Connection]:
    """The one way a boundary (request, consumer, job) opens a unit of work."""
    async with pool.acquire() as conn, conn.transaction():
        yield conn
