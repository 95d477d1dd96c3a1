"""`catalytic dev checkout-complete <session_id>` pays a checkout in the fake Stripe, as a customer
would, and the platform gets the signed webhooks."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.billing.conftest import Billing, Tenant, wait_for


def _run(billing: Billing, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **billing.env}
    return subprocess.run(
        [sys.executable, "-m", "shared.cli", "dev", "checkout-complete", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_checkout_complete_command(billing: Billing, tenant: Tenant, other: Tenant) -> None:
    session = billing.post("/billing/checkout", tenant, json={"plan": "enterprise"}).json()["session_id"]
    done = _run(billing, session)  # auto: through the gateway if it routes webhooks, else to billing
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"session {session}: complete" in done.stdout
    assert "checkout.session.completed" in done.stdout
    assert "signed webhooks delivered" in done.stdout
    gateway = f"{billing.env['GATEWAY_URL']}/webhooks/stripe"
    assert f"webhooks to {gateway}" in done.stdout or f"webhooks to {billing.url}" in done.stdout
    view = wait_for(lambda: (v := billing.subscription(tenant))["status"] == "active" and v, "active")
    assert view["plan"] == "enterprise"

    session = billing.post("/billing/checkout", other, json={"plan": "starter"}).json()["session_id"]
    direct = _run(billing, session, "--to", "billing")
    assert direct.returncode == 0, direct.stdout + direct.stderr
    assert f"webhooks to {billing.url}/webhooks/stripe" in direct.stdout
    wait_for(lambda: billing.subscription(other)["plan"] == "starter", "starter")

    again = _run(billing, session)  # a session is paid once
    assert again.returncode == 1
    assert "refused" in again.stdout
    missing = _run(billing, "cs_test_nope")
    assert missing.returncode == 1
