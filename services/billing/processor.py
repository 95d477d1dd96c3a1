"""The worker task that applies received Stripe events, one per transaction.

The webhook only stores a verified event (and answers Stripe at once); here a few concurrent
loops claim due events with `FOR UPDATE SKIP LOCKED`, apply them inside a savepoint, and mark
them processed or ignored in the same transaction. A failure (Stripe or Redis down, a bug)
rolls the savepoint back and reschedules the event with exponential backoff; after
`webhook_max_attempts` it is marked failed and logged as an error. Inserts NOTIFY the loops,
polling covers a lost notification.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from typing import Any

from services.billing import repository as repo
from services.billing import sync
from services.billing.runtime import Billing, billing_of
from shared.db import Pool, create_pool, release_listener, transaction
from shared.http.app import Resources

log = logging.getLogger("catalytic.billing.processor")

MAX_BACKOFF_S = 3600.0
IDLE_POLL_S = 2.0
MIN_WAIT_S = 0.25


def backoff(attempts: int) -> float:
    """Seconds before attempt `attempts + 1`: 1, 2, 4 … capped at an hour, with jitter."""
    base: float = min(MAX_BACKOFF_S, 2.0 ** min(attempts, 12))
    return base * random.uniform(0.8, 1.2)  # noqa: S311 - jitter, not security


class EventProcessor:
    def __init__(self, pool: Pool, billing: Billing, *, schema: str = "billing") -> None:
        self.pool = pool
        self.billing = billing
        self.max_attempts = billing.settings.webhook_max_attempts
        self.channel = f"{schema}_stripe_events"
        self._wake = asyncio.Event()

    async def process_one(self) -> bool:
        """Apply the oldest due event, if any; True if one was claimed (whatever the outcome)."""
        async with transaction(self.pool) as tx:
            stored = await repo.claim_event(tx)
            if stored is None:
                return False
            try:
                async with tx.transaction():  # savepoint: a failure undoes the handler's writes only
                    status, note = await sync.apply(tx, self.billing, stored)
                    await repo.finish_event(tx, stored.id, status, note)
                    return True
            except Exception as exc:  # noqa: BLE001 - any failure reschedules the event
                error = f"{type(exc).__name__}: {exc}"
            give_up = stored.attempts + 1 >= self.max_attempts
            await repo.postpone_event(tx, stored.id, error, backoff(stored.attempts), give_up)
        if give_up:
            log.error("stripe event %s (%s) failed for good: %s", stored.id, stored.type, error)
        else:
            log.warning("stripe event %s (%s) failed, will retry: %s", stored.id, stored.type, error)
        return True

    async def drain(self) -> int:
        """Apply every due event (tests and benchmarks); answer how many were claimed."""
        count = 0
        while await self.process_one():
            count += 1
        return count

    async def run(self, stop: asyncio.Event, loops: int) -> None:
        listener = await self._listen()
        try:
            await asyncio.gather(*(self._loop(stop) for _ in range(loops)))
        finally:
            if listener is not None and not listener.is_closed():
                await listener.remove_listener(self.channel, self._on_notify)
                await release_listener(self.pool, listener)

    async def _loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                if await self.process_one():
                    continue
                async with self.pool.acquire() as conn:
                    due_in = await repo.next_due_in(conn)
            except Exception:  # Postgres away or restarting: keep the loop alive
                log.warning("stripe event loop failed; retrying in a second", exc_info=True)
                await asyncio.sleep(1.0)
                continue
            # Due but not claimable means another loop holds it: never spin on that.
            wait = IDLE_POLL_S if due_in is None else max(MIN_WAIT_S, min(IDLE_POLL_S, due_in))
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(_first(self._wake.wait(), stop.wait()), wait)

    async def _listen(self) -> Any:
        try:
            conn = await self.pool.acquire()
        except (OSError, ConnectionError) as exc:
            log.warning("stripe events are polled only: %s", exc)
            return None
        await conn.add_listener(self.channel, self._on_notify)
        return conn

    def _on_notify(self, *_: object) -> None:
        self._wake.set()


async def _first(*waits: Any) -> None:
    tasks = [asyncio.ensure_future(w) for w in waits]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()


async def run(resources: Resources, stop: asyncio.Event) -> None:
    """WorkerSpec.extra_tasks entry, with a pool of its own: its loops hold a connection while
    they wait on Stripe, and must not starve the worker's outbox relay and consumers."""
    billing = billing_of(resources)
    loops = billing.settings.webhook_workers
    pool = await create_pool(
        billing.settings.database_url,
        schema="billing",
        application_name="billing-stripe-events",
        min_size=1,
        max_size=loops + 1,  # + the LISTEN connection
    )
    try:
        await EventProcessor(pool, billing).run(stop, loops)
    finally:
        await pool.close()
