"""Child processes of one measurement: spawned fresh, told when to go and stop, always reaped.

Load generator and system under test run in separate processes (each with its own event loop
and GIL), as they do in production; the orchestrating process only waits on a queue.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import queue
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from multiprocessing.queues import Queue
from multiprocessing.sharedctypes import Synchronized, SynchronizedArray
from multiprocessing.synchronize import Event as MpEvent
from types import TracebackType
from typing import Any

import uvloop

from bench.common import machine_cpu

Message = tuple[str, str, Any]  # (kind: ready/result/error, process name, payload)


class BenchError(RuntimeError):
    """A child process failed, or did not answer in time (a hang guard, not a performance check)."""


@dataclass(frozen=True)
class Link:
    """What a child gets to talk to the orchestrator."""

    name: str
    go: MpEvent
    stop: MpEvent
    out: Queue[Message]
    tally: Synchronized[int]  # shared progress, e.g. effects committed by all consumers
    finished_at: Synchronized[float]  # time.monotonic() when the tally reached its target, else 0
    finished_cpu: SynchronizedArray[float]  # machine_cpu() at that moment

    def add(self, count: int, target: int) -> None:
        """Add to the shared tally; whoever reaches `target` stamps the time and tells all to stop."""
        with self.tally.get_lock():
            self.tally.value += count
            reached = self.tally.value >= target and self.finished_at.value == 0.0
            if reached:
                self.finished_at.value = time.monotonic()
                self.finished_cpu[:] = machine_cpu()
        if reached:
            self.stop.set()

    def ready(self) -> None:
        self.out.put(("ready", self.name, None))

    def result(self, payload: Any) -> None:
        self.out.put(("result", self.name, payload))

    async def wait_go(self) -> None:
        await _wait(self.go, 0.001)  # only between ready and go: keep the start sharp

    async def wait_stop(self) -> None:
        await _wait(self.stop, 0.05)  # runs during the measurement: keep its wake-ups rare


async def _wait(event: MpEvent, interval: float) -> None:
    """Poll a multiprocessing event without blocking the loop (or a thread at exit)."""
    while not event.is_set():  # noqa: ASYNC110 - a process-shared event has no awaitable form
        await asyncio.sleep(interval)


def child_main(link: Link, use_uvloop: bool, fn: Callable[..., Any], *args: Any) -> None:
    """Process target: run `await fn(link, *args)`; report a crash instead of leaving a hang."""
    try:
        if use_uvloop:  # as uvicorn runs the API processes (shared/cli.py); workers use asyncio.run
            uvloop.run(fn(link, *args))
        else:
            asyncio.run(fn(link, *args))
    except BaseException:
        link.out.put(("error", link.name, traceback.format_exc()))
        raise


class Crew:
    """A set of child processes sharing a go/stop signal and one result queue."""

    def __init__(self) -> None:
        self._ctx = multiprocessing.get_context("spawn")  # no inherited loops, pools or sockets
        self.go = self._ctx.Event()
        self.stop = self._ctx.Event()
        self.out: Queue[Message] = self._ctx.Queue()
        self.tally: Synchronized[int] = self._ctx.Value("q", 0)
        self.finished_at: Synchronized[float] = self._ctx.Value("d", 0.0)
        self.finished_cpu: SynchronizedArray[float] = self._ctx.Array("d", 2)
        self.procs: dict[str, BaseProcess] = {}

    def start(self, name: str, use_uvloop: bool, fn: Callable[..., Any], *args: Any) -> None:
        link = Link(name, self.go, self.stop, self.out, self.tally, self.finished_at, self.finished_cpu)
        args = (link, use_uvloop, fn, *args)
        proc = self._ctx.Process(target=child_main, args=args, name=f"bench-{name}", daemon=True)
        proc.start()
        self.procs[name] = proc

    def wait(self, kind: str, names: list[str], timeout: float) -> dict[str, Any]:
        """Collect one `kind` message from each of `names`; raise if a child fails or hangs."""
        got: dict[str, Any] = {}
        deadline = time.monotonic() + timeout
        while len(got) < len(names):
            try:
                msg_kind, name, payload = self.out.get(timeout=0.2)
            except queue.Empty:
                self._check_alive(names, got)
                if time.monotonic() > deadline:
                    missing = sorted(set(names) - set(got))
                    raise BenchError(f"no {kind} from {missing} after {timeout:.0f}s") from None
                continue
            if msg_kind == "error":
                raise BenchError(f"bench process {name} failed:\n{payload}")
            if msg_kind == kind and name in names:
                got[name] = payload
        return got

    def _check_alive(self, names: list[str], got: dict[str, Any]) -> None:
        for name in names:
            proc = self.procs[name]
            if name not in got and proc.exitcode is not None:
                raise BenchError(f"bench process {name} exited with code {proc.exitcode}")

    def __enter__(self) -> Crew:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop.set()
        for proc in self.procs.values():
            proc.join(10)
            if proc.is_alive():
                proc.terminate()
                proc.join(5)
            if proc.is_alive():
                proc.kill()
                proc.join()
        self.out.close()
        self.out.join_thread()
