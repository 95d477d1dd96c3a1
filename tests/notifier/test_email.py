"""Events become emails: the right template, recipients and links, exactly once, retried or not."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any
from uuid import UUID, uuid4

import httpx
import msgspec
import pytest

from shared import events
from shared.events import (
    EmailVerificationRequested,
    PasswordChanged,
    PasswordResetRequested,
    Payload,
    PaymentFailed,
    PaymentSucceeded,
    SubscriptionCanceled,
    TenantCreated,
    TrialEnding,
    UserInvited,
    UserRegistered,
)
from tests.notifier.conftest import Notifier
from tests.notifier.helpers import admin_of, bodies, emit, event, eventually, unique_address

APP = "https://app.example.test"
FROM = "Catalytic Cloud <no-reply@catalytic.test>"
LATER = datetime(2031, 5, 17, 9, 30, tzinfo=UTC)


async def _status(n: Notifier, recipient: str, template: str) -> dict[str, Any] | None:
    row = await n.pool.fetchrow(
        "SELECT id, status, attempts, last_code, last_error, message FROM emails"
        " WHERE recipient = $1 AND template = $2",
        recipient,
        template,
    )
    return dict(row) if row else None


async def _final(n: Notifier, recipient: str, template: str) -> dict[str, Any]:
    async def done() -> bool:
        row = await _status(n, recipient, template)
        return row is not None and row["status"] != "queued"

    await eventually(done, 20, f"{template} to {recipient} final")
    row = await _status(n, recipient, template)
    assert row is not None
    return row


async def _attempts(n: Notifier, email_id: UUID) -> list[tuple[str, int | None]]:
    rows = await n.pool.fetch(
        "SELECT outcome, smtp_code FROM email_attempts WHERE email_id = $1 ORDER BY attempt", email_id
    )
    return [(r["outcome"], r["smtp_code"]) for r in rows]


def _with_subject(mails: list[EmailMessage], words: str) -> list[EmailMessage]:
    return [m for m in mails if words in str(m["Subject"])]


async def _tenant_with_people(n: Notifier, name: str) -> tuple[UUID, dict[str, str]]:
    """A tenant known to the projection: owner, admin and member (whose welcome mails arrived)."""
    tenant = uuid4()
    people = {role: unique_address(role) for role in ("owner", "admin", "member")}
    owner_id = uuid4()
    await emit(n.redis, event(TenantCreated(name=name, plan="free", owner_user_id=owner_id), tenant))
    for role, address in people.items():
        user_id = owner_id if role == "owner" else uuid4()
        data = UserRegistered(
            user_id=user_id, email=address, first_name=role.title(), tenant_name=name, role=role
        )  # type: ignore[arg-type]
        await emit(n.redis, event(data, tenant))
    for address in people.values():
        await n.mailbox.wait(address)
    return tenant, people


# --- each event, its email ------------------------------------------------------------

PERSONAL: list[tuple[str, Callable[[str], Payload], str, str]] = [
    (
        "welcome",
        lambda to: UserRegistered(user_id=uuid4(), email=to, first_name="Ada", tenant_name="Acme Labs"),
        "Welcome to Catalytic Cloud, Acme Labs",
        f"{APP}/",
    ),
    (
        "verify_email",
        lambda to: EmailVerificationRequested(
            user_id=uuid4(), email=to, token="vt-123", tenant_name="Acme Labs"
        ),
        "Confirm your email address",
        f"{APP}/verify-email?token=vt-123",
    ),
    (
        "password_reset",
        lambda to: PasswordResetRequested(user_id=uuid4(), email=to, token="r+t/1=", expires_at=LATER),
        "Reset your Catalytic Cloud password",
        f"{APP}/reset-password?token=r%2Bt%2F1%3D",
    ),
    (
        "password_changed",
        lambda to: PasswordChanged(user_id=uuid4(), email=to),
        "password was changed",
        f"{APP}/forgot-password",
    ),
    (
        "invitation",
        lambda to: UserInvited(
            invitation_id=uuid4(), email=to, role="admin", token="inv-9", tenant_name="Acme Labs"
        ),
        "join Acme Labs",
        f"{APP}/accept-invitation?token=inv-9",
    ),
]


@pytest.mark.parametrize(("template", "make", "subject", "link"), PERSONAL, ids=[c[0] for c in PERSONAL])
async def test_identity_event_sends_its_email_with_its_link(
    notifier: Notifier, template: str, make: Callable[[str], Payload], subject: str, link: str
) -> None:
    tenant = uuid4()
    await emit(
        notifier.redis, event(TenantCreated(name="Acme Labs", plan="free", owner_user_id=uuid4()), tenant)
    )
    to = unique_address(template)
    await emit(notifier.redis, event(make(to), tenant))
    [mail] = await notifier.mailbox.wait(to)
    assert subject in str(mail["Subject"])
    assert str(mail["From"]) == FROM
    assert str(mail["To"]) == to
    assert mail.get_content_type() == "multipart/alternative"
    text, html = bodies(mail)
    assert link in text
    assert link.replace("&", "&amp;") in html
    assert "Acme Labs" in text  # the tenant's name, from the event or the projection
    if template == "password_reset":
        assert "17 May 2031, 09:30 UTC" in text
    row = await _final(notifier, to, template)
    assert row["status"] == "sent"
    assert row["message"] is None  # the body (a reset link) is not kept once sent


BILLING: list[tuple[str, Callable[[], Payload], str, str, str]] = [
    (
        "payment_receipt",
        lambda: PaymentSucceeded(
            invoice_id="in_1",
            amount_cents=2900,
            currency="usd",
            hosted_invoice_url="https://pay.example.test/in_1",
        ),
        "Payment received: $29.00",
        "https://pay.example.test/in_1",
        "$29.00",
    ),
    (
        "payment_failed",
        lambda: PaymentFailed(
            invoice_id="in_2", amount_cents=9900, currency="eur", attempt_count=2, next_attempt_at=LATER
        ),
        "your payment of €99.00 failed",
        f"{APP}/settings/billing",
        "17 May 2031",
    ),
    (
        "trial_ending",
        lambda: TrialEnding(subscription_id="sub_1", trial_end=LATER),
        "trial ends on 17 May 2031",
        f"{APP}/settings/billing",
        "17 May 2031",
    ),
    (
        "subscription_canceled",
        lambda: SubscriptionCanceled(
            subscription_id="sub_2",
            plan="starter",
            status="canceled",
            current_period_end=LATER,
            cancel_at_period_end=True,
        ),
        "Starter subscription was canceled",
        f"{APP}/settings/billing",
        "until 17 May 2031",
    ),
]


@pytest.mark.parametrize(
    ("template", "make", "subject", "link", "detail"), BILLING, ids=[c[0] for c in BILLING]
)
async def test_billing_event_mails_owner_and_admins(
    notifier: Notifier, template: str, make: Callable[[], Payload], subject: str, link: str, detail: str
) -> None:
    tenant, people = await _tenant_with_people(notifier, "Globex")
    await emit(notifier.redis, event(make(), tenant))
    for role in ("owner", "admin"):
        mails = await notifier.mailbox.wait(people[role], count=2)
        [mail] = _with_subject(mails, subject)
        text, html = bodies(mail)
        assert link in text and link in html
        assert detail in text
        assert "Globex" in text
        assert (await _final(notifier, people[role], template))["status"] == "sent"
    # Members do not hear about billing: no row was ever made for them.
    assert await _status(notifier, people["member"], template) is None
    assert len(notifier.mailbox.to(people["member"])) == 1  # only their welcome


async def test_html_is_escaped_text_is_plain(notifier: Notifier) -> None:
    to = unique_address("xss")
    evil = '<script>alert("pwn")</script><img src=x onerror=alert(1)>'
    await emit(notifier.redis, event(UserRegistered(user_id=uuid4(), email=to, tenant_name=evil), uuid4()))
    [mail] = await notifier.mailbox.wait(to)
    text, html = bodies(mail)
    assert "<script" not in html and "<img" not in html
    assert "&lt;script&gt;alert(&#34;pwn&#34;)&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;" in html
    assert evil in text  # plain text is not HTML: shown as typed, harmless
    assert "\n" not in str(mail["Subject"])


# --- exactly once ---------------------------------------------------------------------


async def test_redelivered_event_sends_one_email(notifier: Notifier) -> None:
    to = unique_address("again")
    tenant = uuid4()
    same = event(EmailVerificationRequested(user_id=uuid4(), email=to, token="t1"), tenant)
    await emit(notifier.redis, same)
    await emit(notifier.redis, same)  # the relay published it twice (crash before marking it sent)
    await notifier.mailbox.wait(to)
    row = await _final(notifier, to, "verify_email")
    # Even with the inbox forgotten (pruned), the emails' unique key keeps it one.
    forget = "DELETE FROM inbox WHERE event_id = $1 AND consumer_group = 'notifier'"
    await notifier.pool.execute(forget, same.id)
    await emit(notifier.redis, same)
    marker = unique_address("marker")  # an event behind it: once it is mailed, the repeat was handled
    await emit(
        notifier.redis, event(EmailVerificationRequested(user_id=uuid4(), email=marker, token="t2"), tenant)
    )
    await notifier.mailbox.wait(marker)
    handled = "SELECT count(*) FROM inbox WHERE event_id = $1 AND consumer_group = 'notifier'"
    assert await notifier.pool.fetchval(handled, same.id) == 1
    assert len(notifier.mailbox.to(to)) == 1
    assert await notifier.pool.fetchval("SELECT count(*) FROM emails WHERE recipient = $1", to) == 1
    assert (await _attempts(notifier, row["id"])) == [("sent", 250)]


# --- SMTP failures --------------------------------------------------------------------


async def test_smtp_down_then_up_delivers_once(notifier: Notifier) -> None:
    to = unique_address("down")
    notifier.catcher.stop()
    try:
        await emit(notifier.redis, event(UserRegistered(user_id=uuid4(), email=to), uuid4()))

        async def failed_twice() -> bool:
            row = await _status(notifier, to, "welcome")
            return row is not None and row["attempts"] >= 2

        await eventually(failed_twice, 20, "two failed attempts while SMTP is down")
    finally:
        notifier.catcher.start()
    await notifier.mailbox.wait(to)
    row = await _final(notifier, to, "welcome")
    assert row["status"] == "sent"
    tries = await _attempts(notifier, row["id"])
    assert tries[-1] == ("sent", 250)
    assert len(tries) >= 3 and all(outcome == "transient" for outcome, _ in tries[:-1])
    assert len(notifier.mailbox.to(to)) == 1


async def test_451_is_retried_with_backoff_then_sent(notifier: Notifier) -> None:
    to = unique_address("tempfail")
    notifier.mailbox.set_control(tempfail_count=2)
    try:
        await emit(notifier.redis, event(UserRegistered(user_id=uuid4(), email=to), uuid4()))
        await notifier.mailbox.wait(to)
    finally:
        notifier.mailbox.clear_control()
    row = await _final(notifier, to, "welcome")
    assert row["status"] == "sent"
    assert await _attempts(notifier, row["id"]) == [("transient", 451), ("transient", 451), ("sent", 250)]
    assert len(notifier.mailbox.to(to)) == 1


async def test_550_is_not_retried_but_recorded_audited_and_suppressed(notifier: Notifier) -> None:
    to = unique_address("bounce")
    tenant = uuid4()
    notifier.mailbox.set_control(reject_rcpt_regex=to.replace(".", r"\."), reject_code=550)
    try:
        await emit(
            notifier.redis, event(EmailVerificationRequested(user_id=uuid4(), email=to, token="x"), tenant)
        )
        row = await _final(notifier, to, "verify_email")
    finally:
        notifier.mailbox.clear_control()
    assert row["status"] == "failed" and row["last_code"] == 550 and row["attempts"] == 1
    assert await _attempts(notifier, row["id"]) == [("permanent", 550)]
    assert notifier.mailbox.to(to) == []
    # Audited: notifier.email.failed went out through the outbox to the notifier stream.
    failed = await _published(notifier, "notifier.email.failed", to)
    assert failed["data"]["permanent"] is True and "550" in failed["data"]["reason"]
    assert failed["tenant_id"] == str(tenant)
    # Suppressed: the next email to that address is never attempted, even with the server willing.
    assert (
        await notifier.pool.fetchval("SELECT reason FROM suppressions WHERE address = $1", to)
        == "hard_bounce"
    )
    await emit(
        notifier.redis,
        event(PasswordResetRequested(user_id=uuid4(), email=to, token="y", expires_at=LATER), tenant),
    )
    later = await _final(notifier, to, "password_reset")
    assert later["status"] == "suppressed"
    assert await _attempts(notifier, later["id"]) == []
    assert notifier.mailbox.to(to) == []


async def test_sent_email_is_published_for_audit(notifier: Notifier) -> None:
    to = unique_address("audit")
    source = event(UserRegistered(user_id=uuid4(), email=to), uuid4())
    await emit(notifier.redis, source)
    await notifier.mailbox.wait(to)
    sent = await _published(notifier, "notifier.email.sent", to)
    assert sent["data"] == {"template": "welcome", "to": to, "source_event_id": str(source.id)}


async def _published(n: Notifier, event_type: str, to: str) -> dict[str, Any]:
    found: dict[str, Any] = {}

    async def seen() -> bool:
        for _, fields in await n.redis.xrange(events.NOTIFIER_STREAM):
            body = msgspec.json.decode(fields[b"event"])
            if body["type"] == event_type and body["data"]["to"] == to:
                found.update(body)
                return True
        return False

    await eventually(seen, 20, f"{event_type} for {to} on {events.NOTIFIER_STREAM}")
    return found


# --- the tenant's email log -------------------------------------------------------------


async def test_email_log_is_per_tenant_and_for_admins(notifier: Notifier) -> None:
    tenant, other = uuid4(), uuid4()
    to = unique_address("log")
    await emit(notifier.redis, event(UserRegistered(user_id=uuid4(), email=to), tenant))
    await _final(notifier, to, "welcome")
    async with httpx.AsyncClient(base_url=notifier.base_url) as http:
        mine = await http.get("/emails", headers=admin_of(tenant))
        assert mine.status_code == 200, mine.text
        [entry] = mine.json()
        assert entry["recipient"] == to and entry["status"] == "sent" and entry["template"] == "welcome"
        assert "message" not in entry
        assert (await http.get("/emails", headers=admin_of(other))).json() == []
        member = await http.get("/emails", headers=admin_of(tenant, role="member"))
        assert member.status_code == 403 and member.json()["code"] == "insufficient_role"
        bad = await http.get("/emails?status=nope", headers=admin_of(tenant))
        assert bad.status_code == 400 or bad.status_code == 422
