"""`catalytic email test --to ADDRESS`: one message through the configured SMTP server, right now."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from services.notifier.mail import sender
from services.notifier.mail.mime import build_message, normalize
from services.notifier.mail.service import day_time
from services.notifier.mail.templates import render
from services.notifier.settings import NotifierSettings, get_settings


def send_test(to: str, settings: NotifierSettings | None = None) -> int:
    """Send the `test` template to `to`; print what happened; return a process exit code."""
    settings = settings or get_settings()
    address = normalize(to)
    if address is None:
        print(f"not an email address: {to!r}")
        return 2
    context = {
        "product_name": settings.product_name,
        "frontend_url": settings.frontend_url,
        "tenant_name": "",
        "recipient": address,
        "name": "",
        "sent_at": day_time(datetime.now(UTC)),
    }
    rendered = render("test", context)
    message = build_message(settings.email_from, rendered, address, reply_to=settings.email_reply_to)
    result = asyncio.run(sender.send(settings, message, address))
    where = f"{settings.smtp_host}:{settings.smtp_port} ({settings.smtp_security})"
    if result.outcome == "sent":
        print(f"sent a test email to {address} through {where} in {result.duration_ms:.0f} ms")
        return 0
    print(f"could not send to {address} through {where}: {result.outcome} failure: {result.detail}")
    return 1
