"""Email addresses: one normalized form, ASCII only (see docs/identity.md)."""

from __future__ import annotations

import re

from services.identity.errors import InvalidEmail

_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_TLD = r"(?:[A-Za-z]{2,63}|xn--[A-Za-z0-9-]{1,59})"
_EMAIL = re.compile(rf"^{_ATOM}(?:\.{_ATOM})*@(?:{_LABEL}\.)+{_TLD}$")


def normalize(raw: str) -> str:
    """Lower-cased and validated, or InvalidEmail naming what is wrong."""
    email = raw.strip()
    if not email.isascii():
        raise InvalidEmail(
            "email must be ASCII: internationalized addresses are not supported "
            "(write an internationalized domain in its xn-- form)"
        )
    if len(email) > 254 or not _EMAIL.match(email) or len(email.split("@", 1)[0]) > 64:
        raise InvalidEmail(f"{email[:100]!r} is not a valid email address")
    return email.lower()
