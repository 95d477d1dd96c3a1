"""`catalytic dev` (what `make run` calls): the whole platform on this machine."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from pathlib import Path

from shared.devstack import DevEnv, DevStack
from shared.platform import SERVICES
from shared.setup import local_keys_env, migrate_all, provision_dev_roles
from shared.supervisor import Supervisor

log = logging.getLogger("catalytic.dev")

ROOT = Path(os.environ.get("CATALYTIC_DEV_DIR", ".dev")).resolve()


def platform_env(dev: DevEnv) -> dict[str, str]:
    """Settings for every process; written to .dev/dev.env for `source`."""
    env = dev.as_env()
    env.update(asyncio.run(_prepare(dev.database_url)))
    env.update(local_keys_env(ROOT / "keys", "development"))
    env.update(
        {
            "APP_ENV": "development",
            "LOG_FORMAT": os.environ.get("LOG_FORMAT", "text"),
            "LOG_LEVEL": os.environ.get("LOG_LEVEL", "INFO"),
            "SMTP_URL": f"smtp://{dev.smtp_host}:{dev.smtp_port}",
            "STRIPE_WEBHOOK_SECRET": os.environ.get("STRIPE_WEBHOOK_SECRET", "whsec_dev_insecure_local"),
            "GATEWAY_URL": f"http://127.0.0.1:{SERVICES['gateway'].port}",
            # Tenant webhooks may reach this machine (loopback only), so developers can receive them.
            "NOTIFIER_WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8,::1/128",
        }
    )
    for info in SERVICES.values():
        env[f"{info.name.upper()}_URL"] = f"http://127.0.0.1:{info.port}"
    return env


async def _prepare(admin_url: str) -> dict[str, str]:
    env = await provision_dev_roles(admin_url)
    await migrate_all(admin_url)
    return env


def write_env_file(path: Path, env: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{k}={v}\n" for k, v in sorted(env.items())))
    path.chmod(0o600)


def run_dev() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    stop = False

    def on_signal(*_: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    with DevStack(ROOT) as dev:
        env = platform_env(dev)
        write_env_file(ROOT / "dev.env", env)
        sup = Supervisor(env)
        try:
            names = list(SERVICES)
            sup.start_platform(names, [n for n in names if SERVICES[n].schema])
            sup.wait_healthy({n: f"{env[n.upper() + '_URL']}/health" for n in names})
            _banner(env, dev)
            while not stop:
                sup.check_alive()
                time.sleep(0.5)
        finally:
            print("\nstopping…", flush=True)
            sup.stop()


def _banner(env: dict[str, str], dev: DevEnv) -> None:
    lines = [
        "",
        "catalytic platform is running — Ctrl-C stops everything",
        f"  gateway        {env['GATEWAY_URL']}",
        *(f"  {n:<14} {env[n.upper() + '_URL']}" for n in SERVICES if n != "gateway"),
        f"  mail           every message lands as an .eml file in {dev.mail_dir}",
        f"  smtp peer      {dev.smtp_host}:{dev.smtp_port}",
        f"  stripe (fake)  {dev.stripe_api_base}",
        f"  postgres       {dev.database_url}",
        f"  redis          {dev.redis_url}",
        f"  settings       {ROOT / 'dev.env'}   (source it to talk to this stack)",
        "",
    ]
    print("\n".join(lines), flush=True)
