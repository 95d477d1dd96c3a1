"""Event handlers: contacts projection and emails (group `notifier`), webhooks (`notifier.webhooks`).

Each runs in the consumer's transaction, whose inbox row makes a redelivered event a no-op;
the emails' unique key (event, template, recipient) holds even without it.
"""

from __future__ import annotations

from typing import Any

from services.notifier.deps import Deps
from services.notifier.mail import notifications as mail
from services.notifier.repository import contacts
from services.notifier.webhooks import service as webhooks
from shared.bus import Registry
from shared.db import Connection
from shared.events import (
    EmailVerificationRequested,
    Event,
    PasswordChanged,
    PasswordResetRequested,
    PaymentFailed,
    PaymentSucceeded,
    SubscriptionCanceled,
    TenantCreated,
    TenantUpdated,
    TrialEnding,
    UserInvited,
    UserRegistered,
    UserRemoved,
    UserRoleChanged,
)

emails = Registry[Deps]()
tenant_webhooks = Registry[Deps]()


# --- contacts projection ----------------------------------------------------------------


@emails.on(TenantCreated)
async def tenant_created(tx: Connection, event: Event[TenantCreated], deps: Deps) -> None:
    if event.tenant_id is not None:
        await contacts.upsert_tenant(tx, event.tenant_id, event.data.name, event.data.owner_user_id)


@emails.on(TenantUpdated)
async def tenant_updated(tx: Connection, event: Event[TenantUpdated], deps: Deps) -> None:
    if event.tenant_id is not None:
        await contacts.upsert_tenant(tx, event.tenant_id, event.data.name)


@emails.on(UserRegistered)
async def user_registered(tx: Connection, event: Event[UserRegistered], deps: Deps) -> None:
    d = event.data
    if event.tenant_id is not None:
        await contacts.upsert_tenant(tx, event.tenant_id, d.tenant_name)
        await contacts.upsert_member(tx, event.tenant_id, d.user_id, d.email, d.role, d.first_name)
    await mail.welcome(tx, deps, event)


@emails.on(UserRoleChanged)
async def role_changed(tx: Connection, event: Event[UserRoleChanged], deps: Deps) -> None:
    if event.tenant_id is not None:
        await contacts.set_role(tx, event.tenant_id, event.data.user_id, event.data.new_role)


@emails.on(UserRemoved)
async def user_removed(tx: Connection, event: Event[UserRemoved], deps: Deps) -> None:
    if event.tenant_id is not None:
        await contacts.remove_member(tx, event.tenant_id, event.data.user_id)


# --- emails -----------------------------------------------------------------------------


@emails.on(EmailVerificationRequested)
async def verification(tx: Connection, event: Event[EmailVerificationRequested], deps: Deps) -> None:
    await mail.verify_email(tx, deps, event)


@emails.on(PasswordResetRequested)
async def password_reset(tx: Connection, event: Event[PasswordResetRequested], deps: Deps) -> None:
    await mail.password_reset(tx, deps, event)


@emails.on(PasswordChanged)
async def password_changed(tx: Connection, event: Event[PasswordChanged], deps: Deps) -> None:
    if event.tenant_id is not None:
        await contacts.set_email(tx, event.tenant_id, event.data.user_id, event.data.email)
    await mail.password_changed(tx, deps, event)


@emails.on(UserInvited)
async def invited(tx: Connection, event: Event[UserInvited], deps: Deps) -> None:
    await mail.invitation(tx, deps, event)


@emails.on(PaymentSucceeded)
async def payment_succeeded(tx: Connection, event: Event[PaymentSucceeded], deps: Deps) -> None:
    await mail.payment_receipt(tx, deps, event)


@emails.on(PaymentFailed)
async def payment_failed(tx: Connection, event: Event[PaymentFailed], deps: Deps) -> None:
    await mail.payment_failed(tx, deps, event)


@emails.on(TrialEnding)
async def trial_ending(tx: Connection, event: Event[TrialEnding], deps: Deps) -> None:
    await mail.trial_ending(tx, deps, event)


@emails.on(SubscriptionCanceled)
async def subscription_canceled(tx: Connection, event: Event[SubscriptionCanceled], deps: Deps) -> None:
    await mail.subscription_canceled(tx, deps, event)


# --- tenant webhooks --------------------------------------------------------------------


@tenant_webhooks.on_any
async def deliver_to_tenant(tx: Connection, event: Event[Any], deps: Deps) -> None:
    await webhooks.fan_out(tx, event)
