"""The worker process of a service: outbox relay and event consumers, stopped cleanly on SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from shared import logs, observability
from shared.bus import Consumer, ConsumerConfig, OutboxRelay, Registry
from shared.db import Pool, create_pool
from shared.http.app import Resources, redis_client
from shared.settings import CommonSettings

log = logging.getLogger("catalytic.worker")


@dataclass
class ConsumerSpec:
    config: ConsumerConfig
    registry: Registry[Any]
    deps: Callable[[Resources], Any] = lambda resources: resources


@dataclass
class WorkerSpec:
    service: str
    settings: CommonSettings
    schema: str | None
    database_url: str = ""
    relay: bool = True
    consumers: list[ConsumerSpec] = field(default_factory=list)
    extra_tasks: list[Callable[[Resources, asyncio.Event], Coroutine[Any, Any, None]]] = field(
        default_factory=list
    )


async def run_worker(spec: WorkerSpec, stop: asyncio.Event | None = None) -> None:
    logs.configure(f"{spec.service}-worker", spec.settings.log_level, spec.settings.log_format)
    observability.init_sentry(f"{spec.service}-worker", spec.settings)
    stop = stop or _stop_on_signals()
    resources = Resources(settings=spec.settings, redis=redis_client(spec.settings.redis_url))
    pool: Pool | None = None
    if spec.schema:
        pool = await create_pool(
            spec.database_url or spec.settings.database_url,
            schema=spec.schema,
            application_name=f"{spec.service}-worker",
            max_size=5,
        )
        resources.pool = pool
    tasks: list[asyncio.Task[None]] = []
    try:
        if spec.relay and pool is not None:
            relay = OutboxRelay(pool, resources.redis, schema=spec.schema or "")
            tasks.append(asyncio.create_task(relay.run(stop), name="relay"))
        for c in spec.consumers:
            if pool is None:
                raise RuntimeError("consumers need a database for their inbox")
            consumer = Consumer(resources.redis, pool, c.config, c.registry, c.deps(resources))
            tasks.append(asyncio.create_task(consumer.run(stop), name=f"consumer:{c.config.group}"))
        for extra in spec.extra_tasks:
            tasks.append(asyncio.create_task(extra(resources, stop)))
        log.info("worker %s running %s", spec.service, ", ".join(t.get_name() for t in tasks))
        waiter = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait([*tasks, waiter], return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            if task is not waiter and task.exception() is not None:
                log.error("worker task %s crashed", task.get_name(), exc_info=task.exception())
                stop.set()
                raise SystemExit(1)
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 15)
    finally:
        for task in tasks:
            task.cancel()
        if pool is not None:
            await pool.close()
        await resources.redis.aclose()


def _stop_on_signals() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return stop
