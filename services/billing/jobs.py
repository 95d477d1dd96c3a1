"""arq jobs of the billing service: overage reporting and pruning of old Stripe events."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from arq.cron import cron

from services.billing import overage
from services.billing import repository as repo
from services.billing.runtime import billing_of
from services.billing.settings import BillingSettings
from shared.http.app import Resources
from shared.jobs import worker_task

log = logging.getLogger("catalytic.billing.jobs")


async def report_overage(ctx: dict[str, Any]) -> int:
    """Calls beyond each paid tenant's quota -> Stripe meter events (idempotent, see overage.py)."""
    resources: Resources = ctx["resources"]
    assert resources.pool is not None
    return await overage.report_all(resources.pool, resources.redis, billing_of(resources))


async def prune_stripe_events(ctx: dict[str, Any]) -> int:
    resources: Resources = ctx["resources"]
    assert resources.pool is not None
    settings = billing_of(resources).settings
    async with resources.pool.acquire() as conn:
        return await repo.prune_events(conn, settings.stripe_events_keep_days)


def task(settings: BillingSettings) -> Callable[[Resources, asyncio.Event], Coroutine[Any, Any, None]]:
    every = settings.overage_every_minutes
    return worker_task(
        "billing",
        [report_overage, prune_stripe_events],
        cron_jobs=[
            cron(report_overage, minute=set(range(0, 60, every)), second=7, unique=True, timeout=600),
            cron(prune_stripe_events, hour={4}, minute={17}, unique=True),
        ],
    )
