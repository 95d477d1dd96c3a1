"""Child-process plumbing shared by the devstack peers: spawn, wait until ready, stop."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

log = logging.getLogger("catalytic.devstack")


class DevStackError(RuntimeError):
    """A local peer could not be started, reached or stopped."""


def tail(path: Path, lines: int = 20) -> str:
    """Last lines of a log file, for error messages (empty string if unreadable)."""
    try:
        data = path.read_bytes()[-16384:]
    except OSError:
        return ""
    return "\n".join(data.decode("utf-8", "replace").splitlines()[-lines:])


def with_tail(message: str, log_path: Path) -> str:
    text = tail(log_path)
    return (
        f"{message}\n--- last lines of {log_path} ---\n{text}"
        if text
        else f"{message} (log {log_path} is empty)"
    )


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


class Child:
    """One peer process in its own process group, stdout/stderr appended to a log file."""

    def __init__(self, name: str, argv: Sequence[str], log_path: Path, env: dict[str, str] | None = None):
        self.name = name
        self.log_path = log_path
        log_path.parent.mkdir(parents=True, exist_ok=True)
        cmd = list(argv)
        # If this interpreter dies without running atexit (SIGKILL, crash), let the kernel SIGTERM
        # the child. PDEATHSIG follows the spawning *thread*, so only use it from the main thread.
        setpriv = shutil.which("setpriv")
        if setpriv and threading.current_thread() is threading.main_thread():
            cmd = [setpriv, "--pdeathsig", "TERM", "--", *cmd]
        with open(log_path, "ab") as out:
            self.proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # own process group: Ctrl-C goes to us, we stop children in order
                env=env,
            )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def wait_ready(self, check: Callable[[], bool], timeout: float, what: str) -> None:
        """Poll `check` until it is true; on child exit or deadline, stop it and raise with its log tail."""
        deadline = time.monotonic() + timeout
        try:
            while not check():
                code = self.proc.poll()
                if code is not None:
                    raise DevStackError(
                        with_tail(f"{self.name} exited with code {code} before {what}", self.log_path)
                    )
                if time.monotonic() > deadline:
                    raise DevStackError(
                        with_tail(f"{self.name}: no {what} after {timeout:.0f}s", self.log_path)
                    )
                time.sleep(0.1)
        except BaseException:
            self.stop()  # also on Ctrl-C: the caller never got a handle to this child
            raise

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM the process group, then SIGKILL it if it is still there after `timeout`."""
        if self.proc.poll() is not None:
            return
        self._signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            log.warning("%s did not stop after SIGTERM; killing it", self.name)
            self._signal(signal.SIGKILL)
            self.proc.wait(5)

    def _signal(self, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError):  # already gone
            os.killpg(self.proc.pid, sig)
