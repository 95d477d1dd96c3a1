"""Request-scoped dependencies: the request's transaction is opened and closed here."""

from __future__ import annotations

from collections.abc import AsyncGenerator

from litestar.di import Provide

from shared.db import Connection
from shared.http.app import Resources


async def _tx(resources: Resources) -> AsyncGenerator[Connection, None]:
    """Commit when the handler returns, roll back when it raises (Litestar rethrows into us)."""
    assert resources.pool is not None, "this service has no database"
    async with resources.pool.acquire() as conn, conn.transaction():
        yield conn


TX = {"tx": Provide(_tx)}
