"""The whole platform as processes (as `make run` starts it), on ports apart from dev."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from shared.devstack import DevEnv
from shared.platform import SERVICES
from shared.setup import local_keys_env, migrate_all, provision_dev_roles
from shared.supervisor import Supervisor
from tests.conftest import SLOT, TEST_ROOT

PORT_OFFSET = 10_000 + 100 * SLOT  # gateway 18000, identity 18001, …


@dataclass(frozen=True)
class Platform:
    env: dict[str, str]
    supervisor: Supervisor

    def url(self, service: str) -> str:
        return self.env[f"{service.upper()}_URL"]


@pytest.fixture(scope="session")
def platform(peers: DevEnv) -> Iterator[Platform]:
    env = {**peers.as_env(), "APP_ENV": "test", "LOG_LEVEL": "INFO", "LOG_FORMAT": "json"}
    env.update(asyncio.run(_prepare(peers.database_url)))
    env.update(local_keys_env(TEST_ROOT / "keys", "test"))
    # Usage: claim a killed worker's batches, rebuild quota counters and publish key use in
    # seconds rather than minutes.
    env.update(
        {
            "USAGE_CLAIM_IDLE_MS": "2000",
            "USAGE_CLAIM_INTERVAL_SECONDS": "0.5",
            "USAGE_QUOTA_TICK_SECONDS": "0.2",
            "USAGE_QUOTA_SETTLE_SECONDS": "3",
            "USAGE_KEY_FLUSH_SECONDS": "0.5",
        }
    )
    # Billing: Stripe webhook secrets (two, as during a rotation; tests sign with both).
    env["STRIPE_WEBHOOK_SECRET"] = "whsec_test_catalytic_e2e,whsec_test_catalytic_next"
    # Notifier: tenant webhooks may reach test receivers on 127.0.0.2 (every other private or
    # loopback address stays refused); links in emails point to a recognisable frontend.
    env["NOTIFIER_WEBHOOK_ALLOWED_NETWORKS"] = "127.0.0.2/32"
    env["NOTIFIER_FRONTEND_URL"] = "https://app.e2e.test"
    # Identity: cheap argon2 parameters (a setting production refuses) keep login-heavy suites
    # fast on a shared machine; the OWASP parameters are checked on their own and benchmarked.
    env["IDENTITY_PASSWORD_HASH_PROFILE"] = "test"
    for info in SERVICES.values():
        env[f"{info.name.upper()}_PORT"] = str(info.port + PORT_OFFSET)
        env[f"{info.name.upper()}_URL"] = f"http://127.0.0.1:{info.port + PORT_OFFSET}"
    sup = Supervisor(env, log_dir=TEST_ROOT / "logs" / "platform")
    names = list(SERVICES)
    try:
        sup.start_platform(names, [n for n in names if SERVICES[n].schema])
        sup.wait_healthy({n: f"{env[n.upper() + '_URL']}/health" for n in names}, timeout=60)
        yield Platform(env, sup)
    finally:
        sup.stop()


async def _prepare(admin_url: str) -> dict[str, str]:
    env = await provision_dev_roles(admin_url)
    await migrate_all(admin_url)
    return env
