"""The whole platform as `make run` starts it, for the scenarios that cross services.

Every service API (`catalytic serve`) and worker (`catalytic worker`) runs as its own process
against the bench's Postgres, Redis, SMTP catcher and fake Stripe, with production-like
settings: no debug, JSON logs at WARNING, the OWASP argon2 parameters. Schemas are dropped
and migrated again and the Redis database flushed first, so earlier scenarios leave nothing
behind. The processes are always stopped, also on error.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import asyncpg

from bench.common import REPO, free_port, server_children
from shared.devstack import DevEnv
from shared.http.app import redis_client
from shared.platform import SERVICES
from shared.setup import local_keys_env, migrate_all, provision_dev_roles
from shared.supervisor import Supervisor

ROOT = REPO / ".dev" / "bench" / "platform"
REDIS_DB = 8  # apart from the other scenarios
WEBHOOK_SECRET = "whsec_bench_platform"
READY_TIMEOUT = 90.0  # a hang guard, not a performance check


@dataclass(frozen=True)
class Platform:
    env: dict[str, str]
    supervisor: Supervisor
    peers: DevEnv

    def url(self, service: str) -> str:
        return self.env[f"{service.upper()}_URL"]

    def pids(self) -> dict[str, int]:
        """Process name (`gateway-api`, `usage-worker`, …) -> pid; the server processes of a
        `serve --workers N` are `gateway-api-1`…, beside their supervisor."""
        out: dict[str, int] = {}
        for child in self.supervisor.children:
            out[child.name] = child.proc.pid
            for i, pid in enumerate(server_children(child.proc.pid), 1):
                out[f"{child.name}-{i}"] = pid
        return out


def settings(env: DevEnv) -> dict[str, str]:
    redis_url = env.redis_url.rsplit("/", 1)[0] + f"/{REDIS_DB}"
    out = {
        **env.as_env(),
        "REDIS_URL": redis_url,
        "APP_ENV": "test",  # production also demands real TLS URLs and keys outside the repo
        "DEBUG": "false",
        "LOG_LEVEL": "WARNING",
        "LOG_FORMAT": "json",
        "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "IDENTITY_PASSWORD_HASH_PROFILE": "owasp",
    }
    out.update(local_keys_env(ROOT / "keys", "test"))
    for info in SERVICES.values():
        port = free_port()
        out[f"{info.name.upper()}_PORT"] = str(port)
        out[f"{info.name.upper()}_URL"] = f"http://127.0.0.1:{port}"
    return out


@contextmanager
def running(env: DevEnv, extra: dict[str, str] | None = None, gateway_workers: int = 1) -> Iterator[Platform]:
    """Every API and worker of the platform, healthy; stopped on the way out."""
    conf = {**settings(env), **(extra or {})}
    conf.update(asyncio.run(_prepare(env.database_url, conf["REDIS_URL"])))
    sup = Supervisor(conf, log_dir=ROOT / "logs")
    names = list(SERVICES)
    try:
        for name in names:
            workers = ["--workers", str(gateway_workers)] if name == "gateway" else []
            sup.spawn(f"{name}-api", "serve", name, *workers)
        for name in names:
            if SERVICES[name].schema:
                sup.spawn(f"{name}-worker", "worker", name)
        sup.wait_healthy({n: f"{conf[n.upper() + '_URL']}/health" for n in names}, timeout=READY_TIMEOUT)
        yield Platform(conf, sup, env)
    finally:
        sup.stop()


async def _prepare(admin_url: str, redis_url: str) -> dict[str, str]:
    conn = await asyncpg.connect(admin_url)
    try:
        for info in SERVICES.values():
            if info.schema:
                await conn.execute(f"DROP SCHEMA IF EXISTS {info.schema} CASCADE")
    finally:
        await conn.close()
    roles = await provision_dev_roles(admin_url)
    await migrate_all(admin_url)
    redis = redis_client(redis_url)
    try:
        await redis.flushdb()
    finally:
        await redis.aclose()
    return roles
