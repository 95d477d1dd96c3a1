"""No secret used in this session appears in any log the platform wrote (runs last, see conftest).

Covers the platform's processes (logs/platform) and the suite's own gateways (logs/gateway-tests):
passwords, access and refresh tokens, API keys, reset and invitation tokens, webhook signing
secrets, the Stripe webhook secrets and key, the SMTP password if one is set, the private keys."""

from __future__ import annotations

from pathlib import Path

from services.billing.settings import LOCAL_STRIPE_KEY
from tests.conftest import TEST_ROOT
from tests.platform import Platform
from tests.security.conftest import PASSWORD, SECRETS


def _key_body(path: Path) -> str:
    lines = [line for line in path.read_text().splitlines() if line and not line.startswith("-----")]
    return lines[1] if len(lines) > 1 else lines[0]  # a whole line from inside the PEM


def test_no_secret_in_the_logs(platform: Platform) -> None:
    secrets = set(SECRETS) | {PASSWORD, PASSWORD + "-new"}
    secrets |= set(platform.env.get("STRIPE_WEBHOOK_SECRET", "").split(",")) | {LOCAL_STRIPE_KEY}
    for name in ("STRIPE_API_KEY", "STRIPE_SECRET_KEY", "SMTP_PASSWORD", "NOTIFIER_SMTP_PASSWORD"):
        secrets.add(platform.env.get(name, ""))
    for pem in ("jwt_private.pem", "assertion_private.pem"):
        if (TEST_ROOT / "keys" / pem).exists():
            secrets.add(_key_body(TEST_ROOT / "keys" / pem))
    secrets = {s for s in secrets if len(s) >= 8}
    logs = [p for d in ("platform", "gateway-tests") for p in (TEST_ROOT / "logs" / d).glob("*.log")]
    assert logs, "no logs to check"
    size = 0
    found: list[tuple[str, str]] = []
    for log in logs:
        text = log.read_text(errors="replace")
        size += len(text)
        found += [(log.name, s[:12] + "…") for s in secrets if s in text]
    print(f"\n[security] logs: {len(secrets)} secrets searched in {len(logs)} files ({size // 1024} KiB)")
    assert not found, found
