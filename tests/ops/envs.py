"""A production env file that passes every env check, built from .env.production.template."""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
from pathlib import Path

from shared.auth import keys
from shared.cli import main
from shared.ops import envfile
from tests.conftest import REPO

TEMPLATE = REPO / ".env.production.template"


def production_env(keys_dir: Path, **overrides: str) -> dict[str, str]:
    """The template's active lines with real key files and plausible live values."""
    env = envfile.load(TEMPLATE)
    if not (keys_dir / "secrets.key").exists():
        keys.generate("production", keys_dir)
    for name, value in env.items():
        if name.endswith("_FILE"):
            env[name] = str(keys_dir / Path(value).name)
    env |= {
        "STRIPE_API_KEY": "sk_live_51Hx0catalyticpreflight",
        "STRIPE_WEBHOOK_SECRET": "whsec_catalyticpreflight",
        "BILLING_STRIPE_PRICE_STARTER": "price_starter1",
        "BILLING_STRIPE_PRICE_PROFESSIONAL": "price_pro1",
        "BILLING_STRIPE_PRICE_ENTERPRISE": "price_ent1",
        "SMTP_PASSWORD": "relay-password",
    }
    env.update(overrides)
    return {k: v for k, v in env.items() if v != "<unset>"}


def write_env(path: Path, env: dict[str, str], mode: int = 0o600) -> Path:
    path.write_text("".join(f"{k}='{v}'\n" for k, v in env.items()))
    os.chmod(path, mode)
    return path


def run_cli(*argv: str) -> tuple[int, str]:
    """`catalytic ARGV` in this process: (exit code, stdout)."""
    out = io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out):
        try:
            main(list(argv))
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
            if isinstance(exc.code, str):
                out.write(exc.code)
    return code, out.getvalue()


async def run_cli_async(*argv: str) -> tuple[int, str]:
    """run_cli from an async test (the command runs its own event loop, in a thread)."""
    return await asyncio.to_thread(run_cli, *argv)
