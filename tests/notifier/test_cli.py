"""`catalytic email test --to ADDRESS` sends through the configured SMTP server."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.notifier.conftest import Catcher
from tests.notifier.helpers import bodies, unique_address


def _run(catcher: Catcher, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(catcher.port),
        "EMAIL_FROM": "Ops <ops@catalytic.test>",
        "NOTIFIER_PRODUCT_NAME": "Catalytic Cloud",
    }
    return subprocess.run(
        [sys.executable, "-m", "shared.cli", "email", "test", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_email_test_command_sends_a_mail(catcher: Catcher) -> None:
    to = unique_address("cli")
    done = _run(catcher, "--to", to)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"sent a test email to {to}" in done.stdout
    [mail] = await catcher.mailbox.wait(to)
    assert str(mail["From"]) == "Ops <ops@catalytic.test>"
    assert "Catalytic Cloud test email" in str(mail["Subject"])
    text, html = bodies(mail)
    assert "test message" in text and "test message" in html


async def test_email_test_command_reports_a_refusal(catcher: Catcher) -> None:
    to = unique_address("cli-refused")
    catcher.mailbox.set_control(reject_rcpt_regex=to.replace(".", r"\."), reject_code=550)
    try:
        done = _run(catcher, "--to", to)
    finally:
        catcher.mailbox.clear_control()
    assert done.returncode == 1
    assert "permanent failure: 550" in done.stdout
    bad = _run(catcher, "--to", "not-an-address")
    assert bad.returncode == 2 and "not an email address" in bad.stdout
