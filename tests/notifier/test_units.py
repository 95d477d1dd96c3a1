"""Pure parts of the notifier: address policy, signatures, SMTP failure classes, formatting, templates."""

from __future__ import annotations

import base64
import ipaddress
import os
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from uuid import uuid4

import pytest
from aiosmtplib import errors as smtp

from services.notifier.mail.mime import build_message, normalize
from services.notifier.mail.sender import classify
from services.notifier.mail.service import day_time, money
from services.notifier.mail.templates import TEMPLATES, Rendered, render
from services.notifier.settings import NotifierSettings
from services.notifier.webhooks import signing
from services.notifier.webhooks.service import matches, payload
from services.notifier.webhooks.ssrf import AddressBlocked, Policy
from shared.events import EmailVerificationRequested, new_event
from shared.settings import SettingsError, load_settings


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "127.255.0.9",
        "10.1.2.3",
        "172.31.255.1",
        "192.168.0.1",
        "169.254.169.254",
        "100.100.100.200",
        "0.0.0.0",
        "224.0.0.251",
        "255.255.255.255",
        "198.18.0.1",
        "::1",
        "::",
        "fe80::1",
        "fc00::1",
        "fd00:ec2::254",
        "ff02::1",
        "::ffff:10.0.0.1",
        "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
        "2002:7f00:1::",  # 6to4 of 127.0.0.1
    ],
)
def test_internal_addresses_are_refused(address: str) -> None:
    assert not Policy().permits(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["93.184.216.34", "1.1.1.1", "2606:4700:4700::1111"])
def test_public_addresses_are_allowed(address: str) -> None:
    assert Policy().permits(ipaddress.ip_address(address))


def test_allow_list_and_allow_private() -> None:
    loopback = Policy.from_settings(False, ["127.0.0.0/8", "::1/128"])
    assert loopback.permits(ipaddress.ip_address("127.0.0.1"))
    assert loopback.permits(ipaddress.ip_address("::1"))
    assert not loopback.permits(ipaddress.ip_address("10.0.0.1"))
    assert not loopback.permits(ipaddress.ip_address("169.254.169.254"))
    assert Policy.from_settings(True, []).permits(ipaddress.ip_address("10.0.0.1"))
    with pytest.raises(AddressBlocked, match=r"resolves to 10\.0\.0\.1"):
        Policy().check("mixed.example", ["93.184.216.34", "10.0.0.1"])  # one bad answer is enough
    with pytest.raises(AddressBlocked, match="did not resolve"):
        Policy().check("empty.example", [])


def test_signature_matches_the_spec_example() -> None:
    sig = signing.sign(
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "msg_p5jXN8AQM9LWM0D4loKWxJek",
        1614265330,
        b'{"test": 2432232314}',
    )
    assert sig == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    two = signing.headers([signing.new_secret(), signing.new_secret()], "m", 1, b"{}")
    assert len(two["webhook-signature"].split(" ")) == 2
    assert signing.new_secret() != signing.new_secret()


def test_payload_never_carries_tokens() -> None:
    e = new_event(EmailVerificationRequested(user_id=uuid4(), email="a@b.c", token="t0k"), tenant_id=None)
    body = payload(e)
    assert b"t0k" not in body and b'"email":"a@b.c"' in body


def test_type_matching() -> None:
    assert matches(None, "billing.payment.failed")
    assert matches(["billing.*"], "billing.payment.failed")
    assert not matches(["billing.*"], "identity.user.registered")
    assert matches(["identity.user.registered"], "identity.user.registered")
    assert not matches(["identity.user.*"], "identity.users")


@pytest.mark.parametrize(
    ("exc", "outcome", "code", "bounce"),
    [
        (
            smtp.SMTPRecipientsRefused([smtp.SMTPRecipientRefused(550, "no such user", "a@b")]),
            "permanent",
            550,
            True,
        ),
        (
            smtp.SMTPRecipientsRefused([smtp.SMTPRecipientRefused(552, "over quota", "a@b")]),
            "permanent",
            552,
            False,
        ),
        (
            smtp.SMTPRecipientsRefused([smtp.SMTPRecipientRefused(450, "greylisted", "a@b")]),
            "transient",
            450,
            False,
        ),
        (smtp.SMTPDataError(554, "content rejected"), "permanent", 554, False),
        (smtp.SMTPDataError(451, "try later"), "transient", 451, False),
        (smtp.SMTPAuthenticationError(535, "bad credentials"), "transient", 535, False),
        (smtp.SMTPSenderRefused(550, "not our domain", "x@y"), "transient", 550, False),
        (smtp.SMTPConnectError("refused"), "transient", None, False),
        (smtp.SMTPServerDisconnected("gone"), "transient", None, False),
        (smtp.SMTPReadTimeoutError("slow"), "transient", None, False),
        (ConnectionRefusedError(111, "refused"), "transient", None, False),
    ],
)
def test_smtp_failures_are_classified(
    exc: BaseException, outcome: str, code: int | None, bounce: bool
) -> None:
    result = classify(exc)
    assert (result.outcome, result.code, result.hard_bounce) == (outcome, code, bounce)


def test_formatting() -> None:
    assert money(2900, "usd") == "$29.00"
    assert money(123456, "eur") == "€1,234.56"
    assert money(500, "jpy") == "500 JPY"
    assert money(999, "chf") == "9.99 CHF"
    assert day_time(datetime(2030, 1, 2, 3, 4, tzinfo=UTC)) == "2 January 2030, 03:04 UTC"
    assert normalize(" Ada@Example.COM ") == "ada@example.com"
    for bad in ("", "no-at", "a@b@c", "a@b.c, d@e.f", "x@y\r\nBcc: z@w", "<a@b.c>"):
        assert normalize(bad) is None


def test_every_template_renders_with_text_and_html() -> None:
    context = {
        "product_name": "P",
        "frontend_url": "https://f",
        "tenant_name": "T",
        "recipient": "r@x.y",
        "name": "N",
        "dashboard_url": "https://f/",
        "verify_url": "https://f/v",
        "reset_url": "https://f/r",
        "expires_at": "soon",
        "reset_request_url": "https://f/fp",
        "accept_url": "https://f/a",
        "role": "admin",
        "inviter": "I",
        "amount": "$1.00",
        "invoice_id": "in_1",
        "invoice_url": "https://f/i",
        "attempt_count": 1,
        "next_attempt": "",
        "billing_url": "https://f/b",
        "trial_end": "then",
        "plan": "Starter",
        "period_end": "",
        "url": "https://h",
        "failing_for": "5 days",
        "webhooks_url": "https://f/w",
        "sent_at": "now",
    }
    for name in TEMPLATES:
        rendered = render(name, context)
        assert rendered.subject and "\n" not in rendered.subject
        assert "r@x.y" in rendered.text and "<html" in rendered.html
    with pytest.raises(ValueError, match="unknown email template"):
        render("nope", context)


def test_settings_refuse_unsafe_values() -> None:
    env = {"NOTIFIER_EMAIL_FROM": "nobody", "NOTIFIER_WEBHOOK_ALLOWED_NETWORKS": "10.0.0.0/8,not-a-net"}
    with pytest.raises(SettingsError) as err:
        load_settings(NotifierSettings, "NOTIFIER", env)
    text = str(err.value)
    assert "EMAIL_FROM" in text and "not-a-net" in text
    prod = {"APP_ENV": "production", "NOTIFIER_WEBHOOK_ALLOW_PRIVATE": "true"}
    with pytest.raises(SettingsError, match="WEBHOOK_ALLOW_PRIVATE"):
        load_settings(NotifierSettings, "NOTIFIER", prod)
    ok = load_settings(NotifierSettings, "NOTIFIER", {"SMTP_HOST": "smtp.sendgrid.net", "SMTP_PORT": "587"})
    assert (ok.smtp_host, ok.smtp_port, ok.webhook_schedule[1]) == ("smtp.sendgrid.net", 587, 5.0)


def test_mime_message_parses_back_exactly() -> None:
    text = "Héllo Åda,\r\nline with = sign and trailing space \n.\nFrom the start\n" + "x" * 300 + "\n"
    html = "<p>€ 29 &amp; more</p>\n" + "<b>" + "y" * 200 + "</b>"
    subject = "Zahlung fehlgeschlagen: 29,00 € für Müller & Söhne " + "z" * 120
    raw = build_message(
        "Café Ops <ops@catalytic.test>", Rendered(subject, text, html), "ada@example.test", email_id="e1"
    )
    assert raw.isascii() and b"\r\n" in raw and b"\n" not in raw.replace(b"\r\n", b"")
    assert all(len(line) <= 998 for line in raw.split(b"\r\n"))
    msg = message_from_bytes(raw, policy=policy.default)
    assert isinstance(msg, EmailMessage)
    assert str(msg["Subject"]) == subject
    assert str(msg["From"]) == "Café Ops <ops@catalytic.test>"
    assert str(msg["To"]) == "ada@example.test" and msg["X-Catalytic-Email-Id"] == "e1"
    assert msg["Auto-Submitted"] == "auto-generated" and msg["Message-ID"].endswith("@catalytic.test>")
    assert msg.get_content_type() == "multipart/alternative"
    plain, rich = msg.get_body(("plain",)), msg.get_body(("html",))
    assert isinstance(plain, EmailMessage) and isinstance(rich, EmailMessage)
    assert plain.get_content().replace("\r\n", "\n") == text.replace("\r\n", "\n")
    assert rich.get_content().replace("\r\n", "\n") == html


async def test_production_requires_https_for_webhooks() -> None:
    from services.notifier.deps import Deps
    from services.notifier.errors import WebhookUrlInvalid
    from services.notifier.webhooks.service import check_url

    key = "test:" + base64.urlsafe_b64encode(os.urandom(32)).decode()
    deps = Deps.from_settings(NotifierSettings(app_env="production", secrets_key=key))
    with pytest.raises(WebhookUrlInvalid, match="https"):
        await check_url(deps, "http://93.184.216.34/hook")
    assert await check_url(deps, "https://93.184.216.34/hook") == "https://93.184.216.34/hook"


def test_jobs_of_a_killed_worker_come_back_within_minutes() -> None:
    # arq runs a job again once its in-progress mark expires: the longest job timeout + 10 s.
    from services.notifier.jobs import functions

    settings = NotifierSettings()
    timeouts = [f.timeout_s for f in functions(settings)]
    assert all(t is not None and t > settings.smtp_timeout for t in timeouts)
    assert max(t or 0 for t in timeouts) + 10 <= 150  # arq's default would be 310 s
