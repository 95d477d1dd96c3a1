"""A throwaway redis-server for dev and tests, plus a dependency-free PING."""

from __future__ import annotations

import logging
import os
import shutil
import socket
import ssl
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote, urlsplit

from shared.devstack.procs import Child, DevStackError, port_open

log = logging.getLogger("catalytic.devstack")

HOST = "127.0.0.1"
READY_TIMEOUT = 20.0


def _command(*args: str) -> bytes:
    parts = [f"*{len(args)}\r\n".encode()]
    for arg in args:
        raw = arg.encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(raw), raw))
    return b"".join(parts)


def ping(url: str, timeout: float = 1.0) -> bool:
    """True if the Redis at `url` answers PING with PONG (AUTH first when the URL has a password)."""
    parts = urlsplit(url)
    try:
        sock: socket.socket = socket.create_connection((parts.hostname or HOST, parts.port or 6379), timeout)
    except OSError:
        return False
    try:
        if parts.scheme == "rediss":
            sock = ssl.create_default_context().wrap_socket(sock, server_hostname=parts.hostname)
        if parts.password:
            user = unquote(parts.username or "default")
            sock.sendall(_command("AUTH", user, unquote(parts.password)))
            if not sock.recv(256).startswith(b"+OK"):
                return False
        sock.sendall(_command("PING"))
        return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False
    finally:
        sock.close()


def redis_server_binary() -> str:
    """Path of redis-server; installs the Debian package when missing and we are root."""
    found = shutil.which("redis-server")
    if found:
        return found
    if os.geteuid() != 0:
        raise DevStackError(
            "redis-server is not installed; install it (apt-get install redis-server) or set REDIS_URL"
        )
    print("devstack: redis-server not found, installing it with apt-get", file=sys.stderr)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-q", "redis-server"]
    # A fresh image often has no package lists yet, so retry once after an update.
    if subprocess.run(install, env=env, capture_output=True, check=False).returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True, check=False)  # noqa: S607
        done = subprocess.run(install, env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise DevStackError(
                f"apt-get install redis-server failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}"
            )
    found = shutil.which("redis-server") or (
        "/usr/bin/redis-server" if Path("/usr/bin/redis-server").exists() else None
    )
    if not found:
        raise DevStackError("apt-get installed redis-server but the binary is still not on PATH")
    return found


class RedisServer:
    """redis-server on 127.0.0.1:port with its data in `data_dir`; owned by whoever called start()."""

    def __init__(self, data_dir: Path, log_dir: Path, port: int, *, appendonly: bool = True):
        self.data_dir = data_dir
        self.log_path = log_dir / "redis.log"
        self.port = port
        self.appendonly = appendonly
        self.child: Child | None = None

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    def start(self) -> None:
        if self.child and self.child.alive():
            return
        if port_open(HOST, self.port):
            # Never share a server we did not start: its data and config are unknown.
            raise DevStackError(
                f"port {HOST}:{self.port} is already in use (redis-server from another run?); "
                "stop it, pick other ports, or set REDIS_URL to reuse it on purpose"
            )
        binary = redis_server_binary()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        argv = [
            binary,
            "--bind", HOST,
            "--port", str(self.port),
            "--dir", str(self.data_dir),
            "--appendonly", "yes" if self.appendonly else "no",
            "--save", "",
            "--daemonize", "no",
            "--logfile", str(self.log_path),
        ]  # fmt: skip
        self.child = Child("redis", argv, self.log_path)
        self.child.wait_ready(lambda: ping(self.url, 0.5), READY_TIMEOUT, f"PING answer on port {self.port}")
        log.info("redis: started on %s:%d (dir %s)", HOST, self.port, self.data_dir)

    def stop(self) -> None:
        if self.child:
            self.child.stop()
            self.child = None

    def wipe(self) -> None:
        """Delete everything in the data dir (call while stopped)."""
        if self.data_dir.exists():
            shutil.rmtree(self.data_dir)
        self.data_dir.mkdir(parents=True)
