"""Request-scoped dependencies: the request's transaction is opened and closed here."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator

from litestar.di import Provide

from shared.db import UNAVAILABLE, Connection
from shared.http.app import Resources


async def _tx(resources: Resources) -> AsyncGenerator[Connection, None]:
    """Commit when the handler returns, roll back when it raises (Litestar rethrows into us)."""
    assert resources.pool is not None, "this service has no database"
    async with resources.pool.acquire() as conn:
        tx = conn.transaction()
        await tx.start()
        try:
            yield conn
        except BaseException:
            # On a connection Postgres closed (restart, failover) the rollback fails too; the
            # handler's own error is the one to answer with.
            with contextlib.suppress(*UNAVAILABLE):
                await tx.rollback()
            raise
        await tx.commit()


TX = {"tx": Provide(_tx)}
