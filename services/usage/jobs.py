"""arq jobs of the usage service: retention of raw usage rows."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from arq import cron

from services.usage import repository
from services.usage.settings import UsageSettings
from shared.jobs import worker_task

log = logging.getLogger("catalytic.usage.jobs")

PRUNE_CHUNK = 10_000


async def prune_usage_logs(ctx: dict[str, Any]) -> int:
    """Delete raw rows older than USAGE_RETENTION_DAYS, in chunks; rollups and audit logs stay."""
    resources = ctx["resources"]
    settings: UsageSettings = resources.settings
    cutoff = datetime.now(UTC) - timedelta(days=settings.retention_days)
    total = 0
    while True:
        async with resources.pool.acquire() as conn:
            deleted = await repository.prune_usage_logs(conn, cutoff, PRUNE_CHUNK)
        total += deleted
        if deleted < PRUNE_CHUNK:
            break
    log.info("pruned %d usage rows older than %s", total, cutoff.isoformat())
    return total


# Hourly, so each run deletes an hour's worth; arq's cron job id keeps it to one replica per run.
task = worker_task("usage", [prune_usage_logs], cron_jobs=[cron(prune_usage_logs, minute={17}, second={0})])
