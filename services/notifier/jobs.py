"""arq jobs (send an email, attempt a webhook delivery) and the dispatcher that queues them.

Consumers write the durable intent (an `emails` or `webhook_deliveries` row) in their
transaction; an insert trigger NOTIFYs the dispatcher, which enqueues the job after that
commit (job id derived from the row) and, now and then, re-enqueues rows whose job went
missing. Jobs re-check the row first, so a duplicate job does nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import asyncpg
from arq import Retry
from arq.connections import ArqRedis
from arq.worker import Function, func

from services.notifier.deps import Deps
from services.notifier.mail import sender
from services.notifier.mail import service as mail
from services.notifier.repository import emails as emails_repo
from services.notifier.repository import webhooks as hooks_repo
from services.notifier.repository.emails import EmailRow
from services.notifier.settings import NotifierSettings
from services.notifier.webhooks import service as hooks
from services.notifier.webhooks.client import WebhookClient
from shared import jobs
from shared.db import UNAVAILABLE, Pool, transaction
from shared.http.app import Resources
from shared.ids import uuid7

log = logging.getLogger("catalytic.notifier.jobs")

SERVICE = "notifier"
BATCH = 500
STALE_AFTER_S = 120.0  # a row queued this long ago without progress gets its job enqueued again
TROUBLE_RETRY_S = 30.0  # our own trouble (database down): try the job again after this
RECORD_PATIENCE_S = 20.0  # how long a sent email waits for Postgres to record it (within the job timeout)


def email_job_id(email_id: UUID) -> str:
    return f"email:{email_id}"


def delivery_job_id(delivery_id: UUID, attempt: int) -> str:
    return f"webhook:{delivery_id}:{attempt}"


def deps_of(resources: Resources) -> Deps:
    deps = resources.extra.get("deps")
    if deps is None:
        assert isinstance(resources.settings, NotifierSettings)
        deps = resources.extra["deps"] = Deps.from_settings(resources.settings)
    assert isinstance(deps, Deps)
    return deps


def _client(resources: Resources) -> WebhookClient:
    client = resources.extra.get("webhook_client")
    if client is None:
        s = deps_of(resources).settings
        policy = hooks.policy_of(deps_of(resources))
        client = WebhookClient(policy, timeout=s.webhook_timeout, max_body=s.webhook_response_max_bytes)
        resources.extra["webhook_client"] = client
    assert isinstance(client, WebhookClient)
    return client


def _pool(resources: Resources) -> Pool:
    assert resources.pool is not None
    return resources.pool


# --- email ------------------------------------------------------------------------------


async def send_email(ctx: dict[str, Any], email_id: str) -> None:
    resources: Resources = ctx["resources"]
    try:
        delay = await _send_email(resources, UUID(email_id))
    except Exception:
        log.exception("email %s: job failed; will retry", email_id)
        raise Retry(defer=TROUBLE_RETRY_S) from None
    if delay is not None:
        raise Retry(defer=delay)


async def _send_email(resources: Resources, email_id: UUID) -> float | None:
    pool, deps = _pool(resources), deps_of(resources)
    async with pool.acquire() as conn:
        row = await emails_repo.get(conn, email_id)
        if row is None or row.status != "queued":
            return None  # done already (a duplicate job) or pruned
        suppressed = await emails_repo.is_suppressed(conn, row.recipient)
    if suppressed:
        async with transaction(pool) as tx:
            await mail.suppressed(tx, row)
        return None
    result = await sender.send(deps.settings, mail.opened(deps, row), row.recipient)
    if result.outcome != "sent":
        log.warning("email %s to %s: %s (%s)", row.id, row.template, result.outcome, result.detail)
    return await _record(pool, deps, row, result)


async def _record(pool: Pool, deps: Deps, row: EmailRow, result: sender.SendResult) -> float | None:
    """Write the outcome down, waiting out a Postgres restart: a job run again would send again.

    What is left is a crash between the relay's 250 and this commit; the retry then sends the
    same stored message, with the same Message-ID, which receiving systems use to drop repeats."""
    deadline = time.monotonic() + RECORD_PATIENCE_S
    while True:
        try:
            async with transaction(pool) as tx:
                return await mail.record(tx, deps, row, result)
        except UNAVAILABLE as exc:
            if time.monotonic() > deadline:
                raise
            log.warning("email %s: sent, but Postgres is unavailable (%r); recording again", row.id, exc)
            await asyncio.sleep(0.5)


# --- webhooks ---------------------------------------------------------------------------


async def deliver_webhook(ctx: dict[str, Any], delivery_id: str, attempt: int) -> None:
    """Attempt `attempt` of the schedule, or a manual replay when `attempt` is 0."""
    resources: Resources = ctx["resources"]
    try:
        follow = await _deliver(resources, UUID(delivery_id), attempt)
    except Exception:
        log.exception("webhook delivery %s: job failed; will retry", delivery_id)
        raise Retry(defer=TROUBLE_RETRY_S) from None
    if follow is not None:
        await enqueue_delivery(ctx["queue"], UUID(delivery_id), *follow)


async def _deliver(resources: Resources, delivery_id: UUID, attempt: int) -> tuple[int, float] | None:
    pool, deps = _pool(resources), deps_of(resources)
    async with pool.acquire() as conn:
        work = await hooks_repo.work(conn, delivery_id)
    if work is None:
        return None  # endpoint deleted
    if attempt > 0 and (work.status != "pending" or work.attempts != attempt - 1):
        return None  # a duplicate job, or the delivery already succeeded
    if not work.enabled:
        if attempt > 0:
            async with transaction(pool) as tx:
                await hooks.give_up(tx, work, "endpoint disabled")
        return None
    outcome = await hooks.attempt(deps, _client(resources), work)
    async with transaction(pool) as tx:
        return await hooks.record(tx, deps, work, attempt, outcome)


async def enqueue_delivery(queue: ArqRedis, delivery_id: UUID, attempt: int, delay: float) -> None:
    await jobs.enqueue(
        queue,
        "deliver_webhook",
        str(delivery_id),
        attempt,
        job_id=delivery_job_id(delivery_id, attempt),
        defer_by=delay if delay > 0 else None,
    )


async def enqueue_replay(queue: ArqRedis, delivery_id: UUID) -> str:
    job_id = f"webhook:{delivery_id}:manual:{uuid7().hex}"
    await jobs.enqueue(queue, "deliver_webhook", str(delivery_id), 0, job_id=job_id)
    return job_id


def functions(settings: NotifierSettings) -> list[Function]:
    # Explicit timeouts, not arq's 300 s default: a job held by a worker that was killed runs again
    # only when its in-progress mark expires (the longest timeout + 10 s). An SMTP send is a handful
    # of steps of at most smtp_timeout each, then the wait to record it; a webhook attempt is one
    # request.
    return [
        # A few tries beyond the backoff, for our own trouble (database down) on top.
        func(
            send_email,
            name="send_email",
            max_tries=len(settings.email_backoff) + 4,
            timeout=8 * settings.smtp_timeout + RECORD_PATIENCE_S,
        ),
        func(deliver_webhook, name="deliver_webhook", max_tries=5, timeout=2 * settings.webhook_timeout + 10),
    ]


# --- dispatcher -------------------------------------------------------------------------


async def dispatch_once(pool: Pool, queue: ArqRedis) -> int:
    """Enqueue the jobs of new rows (after the claim commits); returns how many rows it took."""
    async with transaction(pool) as tx:
        new_emails = await emails_repo.claim_unqueued(tx, BATCH)
        due = await hooks_repo.claim_undispatched(tx, BATCH)
    await _enqueue_all(queue, new_emails, due)
    return max(len(new_emails), len(due))


async def sweep(pool: Pool, queue: ArqRedis, settings: NotifierSettings) -> None:
    """Jobs lost between a commit and their enqueue get enqueued again (a no-op if they exist)."""
    async with transaction(pool) as tx:
        stale = await emails_repo.stale_queued(tx, STALE_AFTER_S, BATCH)
        overdue = await hooks_repo.overdue(tx, STALE_AFTER_S, BATCH)
    await _enqueue_all(queue, stale, overdue)
    async with pool.acquire() as conn:
        await emails_repo.prune(conn, settings.email_keep_days)
        await hooks_repo.prune(conn, settings.webhook_keep_days)


async def _enqueue_all(
    queue: ArqRedis, email_ids: list[UUID], deliveries: list[tuple[UUID, int, datetime]]
) -> None:
    now = datetime.now(UTC)
    calls: list[Coroutine[Any, Any, object]] = [
        jobs.enqueue(queue, "send_email", str(i), job_id=email_job_id(i)) for i in email_ids
    ]
    for d_id, attempt, due in deliveries:
        calls.append(enqueue_delivery(queue, d_id, attempt, (due - now).total_seconds()))
    for start in range(0, len(calls), 50):
        await asyncio.gather(*calls[start : start + 50])


def dispatcher(schema: str) -> Callable[[Resources, asyncio.Event], Coroutine[Any, Any, None]]:
    """A WorkerSpec.extra_tasks entry: woken by NOTIFY on new rows, polling as a fallback."""

    async def run(resources: Resources, stop: asyncio.Event) -> None:
        settings = deps_of(resources).settings
        pool = _pool(resources)
        queue = await jobs.connect(settings.redis_url, SERVICE)
        wake = asyncio.Event()
        listener: asyncpg.Connection | None = None
        next_sweep = 0.0
        try:
            while not stop.is_set():
                taken = 0
                try:
                    if listener is None or listener.is_closed():
                        listener = await _listen(settings.database_url, f"{schema}_dispatch", wake)
                    wake.clear()
                    taken = await dispatch_once(pool, queue)
                    if time.monotonic() >= next_sweep:
                        next_sweep = time.monotonic() + settings.sweep_interval
                        await sweep(pool, queue, settings)
                except Exception:
                    log.warning("dispatcher pass failed; retrying", exc_info=True)
                if taken >= BATCH:
                    continue
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(_first(wake, stop), settings.dispatch_poll_interval)
        finally:
            if listener is not None:
                with contextlib.suppress(Exception):
                    await listener.close()
            await queue.aclose()
            client = resources.extra.pop("webhook_client", None)
            if client is not None:
                await client.aclose()

    return run


async def _listen(dsn: str, channel: str, wake: asyncio.Event) -> asyncpg.Connection:
    """Its own connection, not one of the worker pool's few, which the jobs need."""
    conn = await asyncpg.connect(dsn)

    def on_notify(*_: object) -> None:
        wake.set()

    await conn.add_listener(channel, on_notify)
    return conn


async def _first(*events: asyncio.Event) -> None:
    waiters = [asyncio.create_task(e.wait()) for e in events]
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waiters:
            w.cancel()
