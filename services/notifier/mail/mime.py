"""The MIME message of an email: multipart/alternative, text then HTML, quoted-printable, CRLF.

Written out directly rather than through the stdlib's email generator, which spends several
milliseconds per message folding headers it does not need to fold (measured on the consumer's
path, where it was the largest single cost). The result is plain RFC 5322/2045 that any
parser reads; the tests parse every message with the stdlib's own parser.
"""

from __future__ import annotations

import binascii
import re
import uuid
from datetime import UTC, datetime
from email.header import Header
from email.utils import format_datetime, formataddr, make_msgid, parseaddr
from functools import cache

from services.notifier.mail.templates import Rendered

_LOCAL = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$")
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_DOMAIN = re.compile(rf"^{_LABEL}(\.{_LABEL})*$")


def normalize(address: str) -> str | None:
    """The lower-cased addr-spec (IDNA domain), or None when it is not one plain address.

    Rejects display names, lists, quoted local parts and anything with CR/LF, so the result
    is safe as a header value and as an SMTP envelope recipient.
    """
    local, at, domain = address.strip().rpartition("@")
    if not at or len(local) > 64 or not _LOCAL.match(local):
        return None
    try:
        domain = domain.encode("idna").decode("ascii")
    except UnicodeError:
        return None
    if len(domain) > 253 or not _DOMAIN.match(domain):
        return None
    return f"{local}@{domain}".lower()


@cache
def _parsed_from(email_from: str) -> tuple[str, str]:
    """(display name, address) of EMAIL_FROM, parsed once."""
    name, address = parseaddr(email_from)
    return name, address


def build_message(
    email_from: str,
    rendered: Rendered,
    recipient: str,
    *,
    reply_to: str = "",
    email_id: str = "",
) -> bytes:
    name, address = _parsed_from(email_from)
    boundary = f"=_{uuid.uuid4().hex}"
    headers = [
        ("Subject", _header(rendered.subject)),
        ("From", formataddr((name, address), charset="utf-8")),
        ("To", recipient),
        *([("Reply-To", _header(reply_to))] if reply_to else []),
        ("Date", format_datetime(datetime.now(UTC))),
        ("Message-ID", make_msgid(domain=address.partition("@")[2] or None)),
        ("Auto-Submitted", "auto-generated"),  # RFC 3834: no vacation auto-replies
        *([("X-Catalytic-Email-Id", email_id)] if email_id else []),
        ("MIME-Version", "1.0"),
        ("Content-Type", f'multipart/alternative; boundary="{boundary}"'),
    ]
    out = [f"{key}: {value}\r\n" for key, value in headers]
    out.append("\r\n")
    for subtype, body in (("plain", rendered.text), ("html", rendered.html)):
        out.append(f"--{boundary}\r\n")
        out.append(f'Content-Type: text/{subtype}; charset="utf-8"\r\n')
        out.append("Content-Transfer-Encoding: quoted-printable\r\n\r\n")
        out.append(_quoted_printable(body))
        out.append("\r\n")
    out.append(f"--{boundary}--\r\n")
    return "".join(out).encode("ascii")


def _header(value: str) -> str:
    """One line of ASCII as it is; anything else RFC 2047-encoded and folded. Never a bare CR/LF."""
    value = " ".join(value.split())
    if value.isascii() and len(value) < 900:
        return value
    return Header(value, "utf-8", maxlinelen=76).encode(linesep="\r\n")


def _quoted_printable(text: str) -> str:
    lines = text.replace("\r\n", "\n").replace("\r", "\n")
    encoded = binascii.b2a_qp(lines.encode("utf-8"), quotetabs=False, istext=True)
    return encoded.decode("ascii").replace("\n", "\r\n")
