"""SMTP delivery with aiosmtplib, and what a failure means: retry, give up, or suppress the address.

Any SMTP relay works (SendGrid: smtp.sendgrid.net:587, user "apikey"; AWS SES:
email-smtp.<region>.amazonaws.com:587 with SMTP credentials), so no provider SDK is needed.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass
from email.utils import parseaddr
from functools import cache
from typing import Literal

import aiosmtplib
from aiosmtplib import errors as smtp

from services.notifier.settings import NotifierSettings

Outcome = Literal["sent", "transient", "permanent"]

# Refusals of the mailbox itself (no such user, not local, bad address): a hard bounce.
_HARD_BOUNCE_CODES = frozenset({550, 551, 553})


@dataclass(frozen=True)
class SendResult:
    outcome: Outcome
    code: int | None = None
    detail: str = ""
    hard_bounce: bool = False
    duration_ms: float = 0.0


async def send(settings: NotifierSettings, raw: bytes, recipient: str) -> SendResult:
    """Hand one message to the SMTP server; never raises for SMTP or network trouble."""
    started = time.perf_counter()
    try:
        await aiosmtplib.send(
            raw,
            sender=parseaddr(settings.email_from)[1],
            recipients=[recipient],
            hostname=settings.smtp_host,
            port=settings.smtp_port,
            username=settings.smtp_username or None,
            password=settings.smtp_password or None,
            use_tls=settings.smtp_security == "tls",
            start_tls={"auto": None, "starttls": True, "tls": False, "none": False}[settings.smtp_security],
            validate_certs=settings.smtp_validate_certs,
            timeout=settings.smtp_timeout,
            local_hostname=_local_hostname(),
        )
    except Exception as exc:  # noqa: BLE001 - every failure is classified, none escapes
        result = classify(exc)
        return SendResult(result.outcome, result.code, result.detail, result.hard_bounce, _ms(started))
    return SendResult("sent", 250, "accepted", duration_ms=_ms(started))


def classify(exc: BaseException) -> SendResult:
    """4xx and network trouble are transient; 5xx is permanent; a 5xx refusal of the mailbox bounces.

    Authentication and sender refusals are our configuration, not the recipient's, so they
    are retried (an operator can fix them) and never suppress anybody.
    """
    if isinstance(exc, smtp.SMTPRecipientsRefused):
        first = exc.recipients[0] if exc.recipients else None
        if first is None:
            return SendResult("transient", None, "recipients refused")
        return _by_code(first.code, first.message, at_rcpt=True)
    if isinstance(exc, smtp.SMTPRecipientRefused):
        return _by_code(exc.code, exc.message, at_rcpt=True)
    if isinstance(exc, smtp.SMTPAuthenticationError | smtp.SMTPSenderRefused):
        return SendResult("transient", exc.code, f"{type(exc).__name__}: {exc.message}"[:500])
    if isinstance(exc, smtp.SMTPResponseException):
        return _by_code(exc.code, exc.message, at_rcpt=False)
    return SendResult("transient", None, f"{type(exc).__name__}: {exc}"[:500])


def _by_code(code: int, message: str, *, at_rcpt: bool) -> SendResult:
    detail = f"{code} {message}"[:500]
    if 500 <= code < 600:
        return SendResult("permanent", code, detail, hard_bounce=at_rcpt and code in _HARD_BOUNCE_CODES)
    return SendResult("transient", code, detail)


@cache
def _local_hostname() -> str:
    """The EHLO name: socket.getfqdn() blocks (a DNS lookup), so once per process, not per mail."""
    return socket.getfqdn() or "localhost"


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)
