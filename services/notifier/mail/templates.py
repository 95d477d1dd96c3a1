"""Email templates: Jinja2 files rendered to subject, plain text and HTML (autoescaped)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

TEMPLATE_DIR = Path(__file__).resolve().parent.parent / "templates"

# Every template a notification may use; each has <name>.subject.txt, <name>.txt and <name>.html.
TEMPLATES = (
    "welcome",
    "verify_email",
    "password_reset",
    "password_changed",
    "invitation",
    "payment_receipt",
    "payment_failed",
    "trial_ending",
    "subscription_canceled",
    "webhook_disabled",
    "test",
)


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


_env = Environment(
    loader=FileSystemLoader(TEMPLATE_DIR),
    # HTML parts are escaped (a tenant named "<script>" renders inert); text parts are not HTML.
    autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
    undefined=StrictUndefined,  # a missing variable is a bug, not an empty string in a mail
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)

_SPACES = re.compile(r"\s+")


def render(template: str, context: dict[str, Any]) -> Rendered:
    if template not in TEMPLATES:
        raise ValueError(f"unknown email template {template!r}")
    subject = _env.get_template(f"{template}.subject.txt").render(context)
    return Rendered(
        # One line, no CR/LF: a subject can never smuggle in another header.
        subject=_SPACES.sub(" ", subject.replace("\x00", "")).strip(),
        text=_env.get_template(f"{template}.txt").render(context),
        html=_env.get_template(f"{template}.html").render(context),
    )
