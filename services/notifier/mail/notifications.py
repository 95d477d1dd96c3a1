"""One function per event that sends email: the template, the recipients and the links."""

from __future__ import annotations

from typing import Any

from services.notifier.deps import Deps
from services.notifier.mail.service import day, day_time, duration, link, money, queue, queue_for_admins
from services.notifier.repository import contacts
from shared.db import Connection
from shared.events import (
    EmailVerificationRequested,
    Event,
    PasswordChanged,
    PasswordResetRequested,
    PaymentFailed,
    PaymentSucceeded,
    SubscriptionCanceled,
    TrialEnding,
    UserInvited,
    UserRegistered,
)


async def _tenant_name(tx: Connection, event: Event[Any], given: str = "") -> str:
    if given or event.tenant_id is None:
        return given
    return await contacts.tenant_name(tx, event.tenant_id)


async def welcome(tx: Connection, deps: Deps, event: Event[UserRegistered]) -> None:
    d = event.data
    name = await _tenant_name(tx, event, d.tenant_name)
    context = {"dashboard_url": link(deps, "dashboard")}
    await queue(tx, deps, event, "welcome", d.email, name, context, d.first_name)


async def verify_email(tx: Connection, deps: Deps, event: Event[EmailVerificationRequested]) -> None:
    d = event.data
    name = await _tenant_name(tx, event, d.tenant_name)
    context = {"verify_url": link(deps, "verify_email", token=d.token)}
    await queue(tx, deps, event, "verify_email", d.email, name, context)


async def password_reset(tx: Connection, deps: Deps, event: Event[PasswordResetRequested]) -> None:
    d = event.data
    name = await _tenant_name(tx, event)
    context = {"reset_url": link(deps, "reset_password", token=d.token), "expires_at": day_time(d.expires_at)}
    await queue(tx, deps, event, "password_reset", d.email, name, context)


async def password_changed(tx: Connection, deps: Deps, event: Event[PasswordChanged]) -> None:
    d = event.data
    name = await _tenant_name(tx, event)
    context = {"reset_request_url": link(deps, "forgot_password")}
    await queue(tx, deps, event, "password_changed", d.email, name, context)


async def invitation(tx: Connection, deps: Deps, event: Event[UserInvited]) -> None:
    d = event.data
    name = await _tenant_name(tx, event, d.tenant_name)
    inviter = ""
    if d.invited_by is not None and event.tenant_id is not None:
        who = await contacts.member(tx, event.tenant_id, d.invited_by)
        inviter = (who.first_name or who.email) if who else ""
    context = {
        "accept_url": link(deps, "accept_invitation", token=d.token),
        "role": d.role,
        "inviter": inviter,
    }
    await queue(tx, deps, event, "invitation", d.email, name, context)


async def payment_receipt(tx: Connection, deps: Deps, event: Event[PaymentSucceeded]) -> None:
    d = event.data
    context = {
        "amount": money(d.amount_cents, d.currency),
        "invoice_id": d.invoice_id,
        "invoice_url": d.hosted_invoice_url or link(deps, "billing"),
    }
    await queue_for_admins(tx, deps, event, "payment_receipt", context)


async def payment_failed(tx: Connection, deps: Deps, event: Event[PaymentFailed]) -> None:
    d = event.data
    context = {
        "amount": money(d.amount_cents, d.currency),
        "attempt_count": d.attempt_count,
        "next_attempt": day(d.next_attempt_at) if d.next_attempt_at else "",
        "billing_url": link(deps, "billing"),
    }
    await queue_for_admins(tx, deps, event, "payment_failed", context)


async def trial_ending(tx: Connection, deps: Deps, event: Event[TrialEnding]) -> None:
    context = {"trial_end": day(event.data.trial_end), "billing_url": link(deps, "billing")}
    await queue_for_admins(tx, deps, event, "trial_ending", context)


async def subscription_canceled(tx: Connection, deps: Deps, event: Event[SubscriptionCanceled]) -> None:
    d = event.data
    context = {
        "plan": d.plan.capitalize(),
        "period_end": day(d.current_period_end) if d.cancel_at_period_end and d.current_period_end else "",
        "billing_url": link(deps, "billing"),
    }
    await queue_for_admins(tx, deps, event, "subscription_canceled", context)


async def webhook_disabled(
    tx: Connection, deps: Deps, event: Event[Any], url: str, failing_for: float
) -> None:
    context = {"url": url, "failing_for": duration(failing_for), "webhooks_url": link(deps, "webhooks")}
    await queue_for_admins(tx, deps, event, "webhook_disabled", context)
