"""Composition root of the billing service: HTTP app and worker."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator

from litestar import Litestar
from litestar.di import Provide

from services.billing import jobs, processor, runtime
from services.billing.api import BillingController, WebhookController
from services.billing.consumers import contacts
from services.billing.runtime import Billing
from services.billing.settings import get_settings
from services.billing.smoke import PlatformController
from shared.bus import ConsumerConfig
from shared.db import Connection
from shared.events import IDENTITY_STREAM
from shared.http import create_app
from shared.http.app import Resources
from shared.http.caller import CALLER
from shared.http.deps import TX
from shared.platform import service
from shared.worker import ConsumerSpec, WorkerSpec

INFO = service("billing")


def _billing(resources: Resources) -> Billing:
    return runtime.billing_of(resources)


async def _autocommit(resources: Resources) -> AsyncGenerator[Connection, None]:
    """A pooled connection without an explicit transaction: a one-statement request (the webhook's
    insert) commits on its own, one round trip instead of three."""
    assert resources.pool is not None
    async with resources.pool.acquire() as conn:
        yield conn


def app() -> Litestar:
    settings = get_settings()

    async def startup(resources: Resources) -> None:
        runtime.billing_of(resources)

    return create_app(
        service=INFO.name,
        settings=settings,
        route_handlers=[PlatformController, BillingController, WebhookController],
        schema=INFO.schema,
        startup=startup,
        shutdown=runtime.close,
        dependencies={
            **TX,
            **CALLER,
            "billing": Provide(_billing, sync_to_thread=False),
            "db": Provide(_autocommit),
        },
    )


def worker() -> WorkerSpec:
    settings = get_settings()
    return WorkerSpec(
        service=INFO.name,
        settings=settings,
        schema=INFO.schema,
        consumers=[
            ConsumerSpec(ConsumerConfig(group="billing.contacts", streams=(IDENTITY_STREAM,)), contacts),
        ],
        extra_tasks=[processor.run, jobs.task(settings), _close],
    )


async def _close(resources: Resources, stop: asyncio.Event) -> None:
    """Close the Stripe client when the worker stops."""
    try:
        await stop.wait()
    finally:
        await runtime.close(resources)
