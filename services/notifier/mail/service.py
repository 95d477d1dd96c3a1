"""Which email an event becomes, for whom, with what links; and what a send attempt leads to."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode
from uuid import UUID

from services.notifier.deps import Deps
from services.notifier.errors import TenantRequired
from services.notifier.mail.mime import build_message, normalize
from services.notifier.mail.sender import SendResult
from services.notifier.mail.templates import render
from services.notifier.repository import contacts, emails
from services.notifier.repository.emails import EmailRow, EmailView
from shared.auth.assertion import Caller
from shared.bus import add_event
from shared.db import Connection
from shared.events import EmailFailed, EmailSent, Event, new_event
from shared.ids import uuid7

log = logging.getLogger("catalytic.notifier.mail")

# Paths of the frontend the links point to (documented in docs/notifier.md).
PATHS = {
    "dashboard": "/",
    "verify_email": "/verify-email",
    "reset_password": "/reset-password",
    "forgot_password": "/forgot-password",
    "accept_invitation": "/accept-invitation",
    "billing": "/settings/billing",
    "webhooks": "/settings/webhooks",
}

_ZERO_DECIMAL = frozenset(
    "bif clp djf gnf jpy kmf krw mga pyg rwf ugx vnd vuv xaf xof xpf".split()  # noqa: SIM905
)
_SYMBOLS = {"usd": "$", "eur": "€", "gbp": "£"}


# --- formatting -------------------------------------------------------------------------


def link(deps: Deps, page: str, **params: str) -> str:
    url = deps.settings.frontend_url.rstrip("/") + PATHS[page]
    return f"{url}?{urlencode(params)}" if params else url


def money(amount: int, currency: str) -> str:
    """Stripe amounts are in the smallest unit; zero-decimal currencies have none."""
    cur = currency.lower()
    value = f"{amount:,}" if cur in _ZERO_DECIMAL else f"{Decimal(amount) / 100:,.2f}"
    symbol = _SYMBOLS.get(cur)
    return f"{symbol}{value}" if symbol else f"{value} {cur.upper()}"


def day(moment: datetime) -> str:
    moment = moment.astimezone(UTC)
    return f"{moment.day} {moment:%B %Y}"


def day_time(moment: datetime) -> str:
    moment = moment.astimezone(UTC)
    return f"{moment.day} {moment:%B %Y, %H:%M} UTC"


def duration(seconds: float) -> str:
    if seconds >= 86_400:
        return f"{seconds / 86_400:g} days"
    if seconds >= 3_600:
        return f"{seconds / 3_600:g} hours"
    return f"{seconds:g} seconds"


# --- queueing ---------------------------------------------------------------------------


async def queue(
    tx: Connection,
    deps: Deps,
    event: Event[Any],
    template: str,
    recipient: str,
    tenant_name: str,
    context: dict[str, Any],
    name: str | None = None,
) -> bool:
    """Render and store one email; False if this (event, template, recipient) already has one."""
    address = normalize(recipient)
    if address is None:
        log.warning("%s for %s: recipient is not a valid address; skipped", template, event.id)
        return False
    email_id = uuid7()
    full = {
        "product_name": deps.settings.product_name,
        "frontend_url": deps.settings.frontend_url,
        "tenant_name": tenant_name,
        "recipient": address,
        "name": name or "",
        **context,
    }
    rendered = render(template, full)
    s = deps.settings
    raw = build_message(s.email_from, rendered, address, reply_to=s.email_reply_to, email_id=str(email_id))
    return await emails.insert(
        tx,
        email_id=email_id,
        tenant_id=event.tenant_id,
        source_event_id=event.id,
        source_event_type=event.type,
        template=template,
        recipient=address,
        subject=rendered.subject,
        message=deps.box.seal(raw.decode("ascii"), _context(email_id)),
    )


async def queue_for_admins(
    tx: Connection, deps: Deps, event: Event[Any], template: str, context: dict[str, Any]
) -> int:
    """The tenant's owner and admins, from the contacts projection."""
    if event.tenant_id is None:
        return 0
    name = await contacts.tenant_name(tx, event.tenant_id)
    recipients = await contacts.admins(tx, event.tenant_id)
    if not recipients:
        log.warning(
            "%s for tenant %s: no owner or admin known yet; nobody to tell", template, event.tenant_id
        )
    done = 0
    for contact in recipients:
        done += await queue(tx, deps, event, template, contact.email, name, context, contact.first_name)
    return done


async def email_log(tx: Connection, caller: Caller, limit: int, status: str | None) -> list[EmailView]:
    if caller.tenant_id is None:
        raise TenantRequired()
    return await emails.list_for_tenant(tx, caller.tenant_id, limit, status)


def opened(deps: Deps, row: EmailRow) -> bytes:
    assert row.message is not None
    return deps.box.open(row.message, _context(row.id)).encode()


def _context(email_id: UUID) -> str:
    return f"email:{email_id}"


# --- outcome of an attempt --------------------------------------------------------------


async def suppressed(tx: Connection, row: EmailRow) -> None:
    await emails.finish(
        tx, row.id, "suppressed", row.attempts, None, "address suppressed after a hard bounce"
    )


async def record(tx: Connection, deps: Deps, row: EmailRow, result: SendResult) -> float | None:
    """Store the attempt and its consequence; returns the delay before a retry, if one is due."""
    attempt = row.attempts + 1
    await emails.record_attempt(
        tx, row.id, attempt, result.outcome, result.code, result.detail, result.duration_ms
    )
    if result.outcome == "sent":
        if await emails.finish(tx, row.id, "sent", attempt, result.code, None):
            data = EmailSent(template=row.template, to=row.recipient, source_event_id=row.source_event_id)
            await add_event(tx, new_event(data, tenant_id=row.tenant_id))
        return None
    backoff = deps.settings.email_backoff
    if result.outcome == "transient" and attempt <= len(backoff):
        await emails.note_retry(tx, row.id, attempt, result.code, result.detail)
        return backoff[attempt - 1]
    if result.hard_bounce:
        await emails.suppress(tx, row.recipient, "hard_bounce", result.code, result.detail, row.id)
    if await emails.finish(tx, row.id, "failed", attempt, result.code, result.detail):
        failed = EmailFailed(
            template=row.template,
            to=row.recipient,
            source_event_id=row.source_event_id,
            permanent=result.outcome == "permanent",
            reason=result.detail,
        )
        await add_event(tx, new_event(failed, tenant_id=row.tenant_id))
    return None
