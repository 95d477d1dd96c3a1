"""arq for work that must wait or retry: one queue per service, msgspec (not pickle), idempotent ids.

The pattern for jobs born in a transaction: write the durable intent (a row: the email to
send, the delivery to attempt) in that transaction, enqueue after commit with `_job_id`
derived from the row, and let a sweeper cron enqueue rows whose job went missing (a crash
between commit and enqueue). A duplicate enqueue is a no-op while the job or its result
exists, and the job itself re-checks the row's state, so nothing is done twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

import msgspec
from arq import create_pool
from arq.connections import ArqRedis, RedisSettings
from arq.cron import CronJob
from arq.worker import Function, Worker
from redis.exceptions import RedisError

from shared.http.app import Resources

log = logging.getLogger("catalytic.jobs")

_encoder = msgspec.msgpack.Encoder()


def serialize(job: dict[str, Any]) -> bytes:
    return _encoder.encode(job)


def deserialize(raw: bytes) -> dict[str, Any]:
    decoded: dict[str, Any] = msgspec.msgpack.decode(raw)
    return decoded


def queue_name(service: str) -> str:
    return f"arq:queue:{service}"


async def connect(redis_url: str, service: str) -> ArqRedis:
    return await create_pool(
        RedisSettings.from_dsn(redis_url),
        job_serializer=serialize,
        job_deserializer=deserialize,
        default_queue_name=queue_name(service),
    )


# Queue name -> the event that wakes this process's arq worker of that queue, if it runs one.
_wakeups: dict[str, asyncio.Event] = {}


async def enqueue(
    queue: ArqRedis, function: str, *args: Any, job_id: str, defer_by: float | None = None
) -> bool:
    """Enqueue once per `job_id`; False when that job is already queued, running or done."""
    job = await queue.enqueue_job(function, *args, _job_id=job_id, _defer_by=defer_by)
    if job is not None and not defer_by and (wake := _wakeups.get(queue.default_queue_name)):
        wake.set()  # a worker in this process starts it now rather than at its next poll
    return job is not None


class _WakeableWorker(Worker):
    """arq's Worker, whose poll loop also wakes when this process enqueues a job.

    arq sleeps `poll_delay` between polls of its queue; jobs born in the worker process itself
    (the notifier's dispatcher, billing's processors) would wait for that sleep. Jobs enqueued by
    other processes are still found by the poll."""

    def __init__(self, *args: Any, wake: asyncio.Event, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._wake = wake

    async def main(self) -> None:
        self.ctx["redis"] = self.pool
        if self.on_startup:
            await self.on_startup(self.ctx)
        while True:
            self._wake.clear()
            await self._poll_iteration()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_delay_s)


def worker_task(
    service: str,
    functions: Sequence[Function | Callable[..., Any]],
    cron_jobs: Sequence[CronJob] = (),
    max_tries: int = 8,
    poll_delay: float = 0.1,
) -> Callable[[Resources, asyncio.Event], Coroutine[Any, Any, None]]:
    """A WorkerSpec.extra_tasks entry running an arq worker beside the relay and consumers.

    Jobs get `ctx["resources"]` (the worker's pool and redis) and `ctx["queue"]`.
    """

    async def run(resources: Resources, stop: asyncio.Event) -> None:
        # arq's loop ends on a Redis error (a restart, a failover); start a fresh one until stopped.
        while not stop.is_set():
            try:
                queue = await connect(resources.settings.redis_url, service)
            except (OSError, RedisError) as exc:
                log.warning("arq worker for %s cannot reach Redis (%s); retrying", service, exc)
                await _sleep_unless(stop, 1.0)
                continue
            wake = _wakeups[queue_name(service)] = asyncio.Event()  # bound to this loop
            worker = _WakeableWorker(
                functions=list(functions),
                cron_jobs=list(cron_jobs),
                redis_pool=queue,
                queue_name=queue_name(service),
                handle_signals=False,
                max_tries=max_tries,
                job_serializer=serialize,
                job_deserializer=deserialize,
                keep_result=86_400,
                ctx={"resources": resources, "queue": queue},
                poll_delay=poll_delay,
                wake=wake,
            )
            task = asyncio.create_task(worker.async_run())
            stopper = asyncio.create_task(stop.wait())
            try:
                await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                stopper.cancel()
                with contextlib.suppress(Exception):
                    await worker.close()
                task.cancel()
                outcome = (await asyncio.gather(task, return_exceptions=True))[0]
            if not stop.is_set():
                log.warning("arq worker for %s stopped (%r); starting it again", service, outcome)
                await _sleep_unless(stop, 1.0)

    return run


async def _sleep_unless(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
