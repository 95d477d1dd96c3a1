"""Settings of the notifier service (env prefix NOTIFIER_; shared names such as SMTP_HOST work too)."""

from __future__ import annotations

import ipaddress
from email.utils import parseaddr
from typing import Literal

from shared.settings import CommonSettings, load_settings

PREFIX = "NOTIFIER"

SmtpSecurity = Literal["auto", "starttls", "tls", "none"]

# Svix's schedule: immediately, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h (delay before each attempt).
WEBHOOK_SCHEDULE = (0.0, 5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0)
# Delay after the n-th failed SMTP attempt; the sum stays well under arq's one-day job expiry.
EMAIL_BACKOFF = (10.0, 30.0, 120.0, 600.0, 1800.0, 3600.0, 7200.0)


class NotifierSettings(CommonSettings, frozen=True, kw_only=True):
    port: int = 8003

    # --- email ----------------------------------------------------------------------------
    frontend_url: str = "http://localhost:3000"
    email_from: str = "Catalytic <no-reply@localhost>"
    email_reply_to: str = ""
    product_name: str = "Catalytic"
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 587
    smtp_username: str = ""
    smtp_password: str = ""
    # auto: STARTTLS when the server offers it; starttls: required; tls: implicit TLS (465); none.
    smtp_security: SmtpSecurity = "auto"
    smtp_timeout: float = 15.0
    smtp_validate_certs: bool = True
    email_backoff: tuple[float, ...] = EMAIL_BACKOFF
    email_keep_days: int = 30

    # --- webhooks -------------------------------------------------------------------------
    webhook_timeout: float = 15.0
    webhook_schedule: tuple[float, ...] = WEBHOOK_SCHEDULE
    webhook_disable_after: float = 5 * 86_400.0  # failing this long (no success) disables an endpoint
    webhook_rotation_overlap: float = 86_400.0  # the old secret still signs this long after a rotation
    webhook_max_endpoints: int = 20
    webhook_response_max_bytes: int = 2_048
    webhook_keep_days: int = 30
    # SSRF: private, loopback, link-local, metadata… destinations are refused unless allowed here.
    webhook_allow_private: bool = False
    webhook_allowed_networks: tuple[str, ...] = ()

    # --- jobs -----------------------------------------------------------------------------
    dispatch_poll_interval: float = 1.0  # LISTEN/NOTIFY wakes the dispatcher; this covers a lost one
    sweep_interval: float = 60.0

    def problems(self) -> list[str]:
        found = super().problems()
        if not parseaddr(self.email_from)[1] or "@" not in parseaddr(self.email_from)[1]:
            found.append(f"EMAIL_FROM={self.email_from!r} is not an email address")
        if not self.frontend_url.startswith(("http://", "https://")):
            found.append("FRONTEND_URL must start with http:// or https://")
        if not self.webhook_schedule:
            found.append("NOTIFIER_WEBHOOK_SCHEDULE needs at least one delay")
        for net in self.webhook_allowed_networks:
            try:
                ipaddress.ip_network(net, strict=False)
            except ValueError:
                found.append(f"NOTIFIER_WEBHOOK_ALLOWED_NETWORKS: {net!r} is not a network")
        if self.is_production:
            if self.webhook_allow_private:
                found.append("NOTIFIER_WEBHOOK_ALLOW_PRIVATE must be false when APP_ENV=production")
            if self.smtp_security in ("none", "auto") and self.smtp_password:
                found.append("SMTP_SECURITY must be starttls or tls when a password is sent (production)")
        return found


def get_settings() -> NotifierSettings:
    return load_settings(NotifierSettings, PREFIX)
