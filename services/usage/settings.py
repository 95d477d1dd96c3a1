"""Settings of the usage service (env prefix USAGE_)."""

from __future__ import annotations

from shared.settings import CommonSettings, load_settings

PREFIX = "USAGE"


class UsageSettings(CommonSettings, frozen=True, kw_only=True):
    port: int = 8004
    # Raw request rows are deleted after this many days; rollups and audit logs are kept.
    retention_days: int = 30
    # Stream entries (gateway batches of many records) read and stored per transaction.
    ingest_batch_entries: int = 50
    # A consumer silent this long is presumed dead and its entries are claimed by another.
    claim_idle_ms: int = 30_000
    claim_interval_seconds: float = 5.0
    # Quota counter keeper: heartbeat period, how long a rebuild keeps topping up after a
    # Redis loss (late batches), and the clock difference tolerated between hosts.
    quota_tick_seconds: float = 1.0
    quota_settle_seconds: float = 120.0
    clock_skew_seconds: float = 1.0
    # Longest a request can take through the gateway: a record's time is its end, the INCR
    # happened at its start.
    max_request_seconds: float = 120.0
    # API keys' last-used times go to identity at most this often (one event per tenant).
    key_flush_seconds: float = 60.0
    export_batch_rows: int = 2_000
    trim_interval_seconds: float = 30.0

    def problems(self) -> list[str]:
        found = super().problems()
        if self.retention_days < 1:
            found.append("USAGE_RETENTION_DAYS must be at least 1")
        if self.ingest_batch_entries < 1:
            found.append("USAGE_INGEST_BATCH_ENTRIES must be at least 1")
        if self.claim_idle_ms < 1_000:
            found.append("USAGE_CLAIM_IDLE_MS must be at least 1000")
        for name in ("quota_tick_seconds", "key_flush_seconds", "claim_interval_seconds"):
            if getattr(self, name) <= 0:
                found.append(f"USAGE_{name.upper()} must be positive")
        if min(self.quota_settle_seconds, self.clock_skew_seconds, self.max_request_seconds) < 0:
            found.append(
                "USAGE_QUOTA_SETTLE_SECONDS, USAGE_CLOCK_SKEW_SECONDS and USAGE_MAX_REQUEST_SECONDS"
                " must not be negative"
            )
        if not 100 <= self.export_batch_rows <= 50_000:
            found.append("USAGE_EXPORT_BATCH_ROWS must be between 100 and 50000")
        return found


def get_settings() -> UsageSettings:
    return load_settings(UsageSettings, PREFIX)
