"""DevStack: start/stop the local peers (Postgres, Redis, mail catcher, localstripe) under one root dir."""

from __future__ import annotations

import atexit
import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from shared.devstack import postgres, redis
from shared.devstack.mailcatcher import start_mailcatcher
from shared.devstack.procs import Child, DevStackError, port_open
from shared.devstack.stripe import start_localstripe

log = logging.getLogger("catalytic.devstack")

HOST = "127.0.0.1"


@dataclass(frozen=True)
class Ports:
    postgres: int = 55432
    redis: int = 56379
    smtp: int = 1025
    stripe: int = 8420


@dataclass(frozen=True)
class DevEnv:
    database_url: str  # superuser URL to database "catalytic"
    redis_url: str
    smtp_host: str
    smtp_port: int
    mail_dir: Path  # every received mail lands here as one .eml file
    stripe_api_base: str

    def as_env(self) -> dict[str, str]:
        return {
            "DATABASE_URL": self.database_url,
            "REDIS_URL": self.redis_url,
            "SMTP_HOST": self.smtp_host,
            "SMTP_PORT": str(self.smtp_port),
            "DEV_MAIL_DIR": str(self.mail_dir),
            "STRIPE_API_BASE": self.stripe_api_base,
        }


class DevStack:
    """Throwaway local peers under `root` (pg/, redis/, mail/, logs/).

    An existing DATABASE_URL / REDIS_URL that answers is reused instead of starting a server;
    stop() only stops what this instance started. `fast=True` (tests) trades Postgres durability
    for speed and starts localstripe without its pickled state."""

    def __init__(
        self,
        root: Path,
        ports: Ports = Ports(),  # frozen dataclass: a shared default is safe
        *,
        peers: bool = True,
        fast: bool = False,
        redis_appendonly: bool = True,
    ) -> None:
        self.root = Path(root).resolve()
        self.ports = ports
        self.peers = peers
        self.fast = fast
        self.logs = self.root / "logs"
        self.mail_dir = self.root / "mail"
        self.smtp_control_path = self.root / "smtp-control.json"  # failure injection, see mailcatcher.py
        pg_home = _pg_home(self.root)
        self.pg = postgres.PostgresCluster(pg_home / "pg", pg_home / "logs", ports.postgres, fast=fast)
        self.redis = redis.RedisServer(
            self.root / "redis", self.logs, ports.redis, appendonly=redis_appendonly
        )
        self._pg_owned = False
        self._pg_reused_cluster = False  # our own data dir, but a server left running by an earlier run
        self._redis_owned = False
        self._children: list[Child] = []
        self._env: DevEnv | None = None

    def start(self) -> DevEnv:
        if self._env is not None:
            return self._env
        self.logs.mkdir(parents=True, exist_ok=True)
        atexit.register(self.stop)
        try:
            env = DevEnv(
                database_url=self._start_postgres(),
                redis_url=self._start_redis(),
                smtp_host=HOST,
                smtp_port=self.ports.smtp,
                mail_dir=self.mail_dir,
                stripe_api_base=f"http://{HOST}:{self.ports.stripe}",
            )
            if self.peers:
                self._start_peers()
        except BaseException:
            self.stop()  # leave nothing half-started behind
            raise
        self._env = env
        return env

    def stop(self) -> None:
        atexit.unregister(self.stop)
        errors: list[str] = []
        for child in reversed(self._children):
            child.stop()
        self._children.clear()
        if self._redis_owned:
            self.redis.stop()
            self._redis_owned = False
        if self._pg_owned:
            try:
                self.pg.stop()
            except DevStackError as exc:
                errors.append(str(exc))
            self._pg_owned = False
        self._env = None
        if errors:
            raise DevStackError("; ".join(errors))

    def __enter__(self) -> DevEnv:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def restart_redis(self) -> None:
        """Stop and start the managed redis-server (same port, same data dir)."""
        self._require_owned(self._redis_owned, "redis")
        self.redis.stop()
        self.redis.start()

    def kill_redis_data(self) -> None:
        """Restart the managed redis-server with an empty data dir (simulates losing Redis state)."""
        self._require_owned(self._redis_owned, "redis")
        self.redis.stop()
        self.redis.wipe()
        self.redis.start()

    def restart_postgres(self) -> None:
        self._require_owned(self._pg_owned or self._pg_reused_cluster, "postgres")
        self.pg.stop()
        self.pg.start()
        self._pg_owned, self._pg_reused_cluster = True, False

    # -- internals -----------------------------------------------------------------------------

    def _require_owned(self, owned: bool, name: str) -> None:
        if not owned:
            raise DevStackError(
                f"{name} is not managed by this DevStack (not started, or reused from the env)"
            )

    def _start_postgres(self) -> str:
        url = os.environ.get("DATABASE_URL")
        if url:
            if postgres.psql_ok(url):
                log.info("postgres: reusing DATABASE_URL")
                return url
            log.warning("postgres: DATABASE_URL is set but not reachable; starting a local cluster instead")
        started = self.pg.start()
        self._pg_owned, self._pg_reused_cluster = started, not started
        return self.pg.url

    def _start_redis(self) -> str:
        url = os.environ.get("REDIS_URL")
        if url:
            if redis.ping(url):
                log.info("redis: reusing REDIS_URL")
                return url
            log.warning("redis: REDIS_URL is set but does not answer PING; starting a local redis-server")
        self.redis.start()
        self._redis_owned = True
        return self.redis.url

    def _start_peers(self) -> None:
        for name, port in (("smtp", self.ports.smtp), ("localstripe", self.ports.stripe)):
            if port_open(HOST, port):
                raise DevStackError(
                    f"{name}: port {HOST}:{port} is already in use; stop it or pick other ports"
                )
        self.mail_dir.mkdir(parents=True, exist_ok=True)
        self._children.append(
            start_mailcatcher(HOST, self.ports.smtp, self.mail_dir, self.smtp_control_path, self.logs)
        )
        log.info("mailcatcher: started on %s:%d (mail in %s)", HOST, self.ports.smtp, self.mail_dir)
        self._children.append(start_localstripe(self.ports.stripe, self.logs, from_scratch=self.fast))
        log.info("localstripe: started on %s:%d", HOST, self.ports.stripe)


def _pg_home(root: Path) -> Path:
    """root, or a spot under /var/tmp when the postgres OS user could not reach root/pg.

    As root, the cluster runs as `postgres`, which needs search permission on every parent
    (a checkout under /root has none); the data then lives beside, keyed by the checkout.
    """
    if os.geteuid() != 0 or all(os.stat(p).st_mode & 0o001 for p in [root, *root.parents] if p.exists()):
        return root
    digest = hashlib.sha1(str(root).encode()).hexdigest()[:10]  # noqa: S324 - a name, not security
    return Path("/var/tmp") / f"catalytic-pg-{digest}"  # noqa: S108 - fixed name, root-only fallback
