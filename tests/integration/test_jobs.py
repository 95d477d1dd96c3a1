"""arq integration: msgspec serialization, one run per job id, retries."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from arq import Retry
from redis.asyncio import Redis

from shared import jobs
from shared.devstack import DevEnv, DevStack
from shared.http.app import Resources
from shared.settings import CommonSettings
from tests.conftest import scratch_redis_url
from tests.integration.bushelp import eventually

RUNS: list[tuple[str, Any]] = []


async def record(ctx: dict[str, Any], label: str, payload: dict[str, Any]) -> None:
    RUNS.append((label, payload))


async def flaky(ctx: dict[str, Any], label: str) -> None:
    RUNS.append((label, ctx["job_try"]))
    if ctx["job_try"] < 3:
        raise Retry(defer=0.05)


async def test_job_runs_once_per_id_and_retries(peers: DevEnv, redis: Redis) -> None:
    await redis.flushdb()
    RUNS.clear()
    url = scratch_redis_url(peers)
    settings = CommonSettings(redis_url=url)
    resources = Resources(settings=settings, redis=redis)
    queue = await jobs.connect(url, "tests")
    stamp = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    payload = {"id": UUID(int=7), "at": stamp, "n": 1}
    assert await jobs.enqueue(queue, "record", "once", payload, job_id="record:1") is True
    assert await jobs.enqueue(queue, "record", "once", payload, job_id="record:1") is False
    assert await jobs.enqueue(queue, "flaky", "retry", job_id="flaky:1") is True
    stop = asyncio.Event()
    task = asyncio.create_task(jobs.worker_task("tests", [record, flaky])(resources, stop))
    try:
        await eventually(lambda: _ran(3 + 1))
        await asyncio.sleep(0.3)  # room for a wrong second run of record:1 to show up
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
        await queue.aclose()
    assert [r for r in RUNS if r[0] == "once"] == [("once", {"id": str(UUID(int=7)), "at": stamp, "n": 1})]
    assert [r[1] for r in RUNS if r[0] == "retry"] == [1, 2, 3]
    again = await jobs.connect(url, "tests")
    assert await jobs.enqueue(again, "record", "x", {}, job_id="record:1") is False  # result kept: still once
    await again.aclose()


async def test_a_job_enqueued_in_the_worker_process_starts_without_waiting_for_the_poll(
    peers: DevEnv, redis: Redis
) -> None:
    await redis.flushdb()
    RUNS.clear()
    url = scratch_redis_url(peers)
    resources = Resources(settings=CommonSettings(redis_url=url), redis=redis)
    stop = asyncio.Event()
    # A poll once a minute: only the wake-up can start the job within the 20 s allowed below.
    task = asyncio.create_task(jobs.worker_task("tests", [record], poll_delay=60)(resources, stop))
    queue = await jobs.connect(url, "tests")
    try:
        await eventually(lambda: _worker_polled(redis))
        await jobs.enqueue(queue, "record", "woken", {}, job_id="woken")
        await eventually(lambda: _ran(1), 20)
    finally:
        stop.set()
        await asyncio.wait_for(task, 15)
        await queue.aclose()
    assert [r[0] for r in RUNS] == ["woken"]


async def _worker_polled(redis: Redis) -> bool:
    """arq records its health check at the first poll: from then on it sleeps `poll_delay`."""
    return bool(await redis.keys("arq:queue:tests:health-check"))


async def _ran(n: int) -> bool:
    return len(RUNS) >= n


async def test_job_worker_survives_redis_losing_its_data(
    peers: DevEnv, stack: DevStack, redis: Redis
) -> None:
    await redis.flushdb()
    RUNS.clear()
    url = scratch_redis_url(peers)
    resources = Resources(settings=CommonSettings(redis_url=url), redis=redis)
    stop = asyncio.Event()
    task = asyncio.create_task(jobs.worker_task("tests", [record])(resources, stop))
    try:
        queue = await jobs.connect(url, "tests")
        await jobs.enqueue(queue, "record", "before", {}, job_id="before")
        await eventually(lambda: _ran(1))
        await queue.aclose()
        stack.kill_redis_data()  # a restart that also loses every key, as after a Redis crash
        await asyncio.sleep(1.5)  # the worker polls meanwhile and meets the outage
        queue = await jobs.connect(url, "tests")
        await jobs.enqueue(queue, "record", "after", {}, job_id="after")
        await eventually(lambda: _ran(2), 30)
        await queue.aclose()
    finally:
        stop.set()
        await asyncio.wait_for(task, 15)
    assert [r[0] for r in RUNS] == ["before", "after"]
