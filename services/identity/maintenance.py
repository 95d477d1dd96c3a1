"""Housekeeping in the worker: expired sessions, one-time tokens and invitations are deleted."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from services.identity.repository import invitations, sessions, tokens
from shared.http.app import Resources

log = logging.getLogger("catalytic.identity.maintenance")

INTERVAL_SECONDS = 3_600.0
KEEP_DAYS = 7  # expired rows stay a week: support can still see why a link failed


async def prune_once(resources: Resources) -> dict[str, int]:
    assert resources.pool is not None
    async with resources.pool.acquire() as conn:
        return {
            "refresh_tokens": await sessions.prune(conn, KEEP_DAYS),
            "one_time_tokens": await tokens.prune(conn, KEEP_DAYS),
            "invitations": await invitations.prune(conn, KEEP_DAYS),
        }


async def run(resources: Resources, stop: asyncio.Event) -> None:
    while not stop.is_set():
        try:
            pruned = await prune_once(resources)
            if any(pruned.values()):
                log.info("pruned expired rows", extra=pruned)
        except (OSError, ConnectionError, TimeoutError) as exc:
            log.warning("pruning failed, will retry: %s", exc)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), INTERVAL_SECONDS)
