"""Composition root of the notifier service: HTTP app and worker."""

from __future__ import annotations

from litestar import Litestar

from services.notifier import jobs
from services.notifier.api import DEPENDENCIES, EmailLog, WebhookEndpoints
from services.notifier.consumers import emails, tenant_webhooks
from services.notifier.deps import Deps
from services.notifier.settings import NotifierSettings, get_settings
from shared import jobs as shared_jobs
from shared.bus import ConsumerConfig
from shared.events import BILLING_STREAM, DOMAIN_STREAMS, IDENTITY_STREAM
from shared.http import create_app
from shared.http.app import Resources
from shared.http.caller import CALLER
from shared.http.deps import TX
from shared.platform import service
from shared.worker import ConsumerSpec, WorkerSpec

INFO = service("notifier")


def app(settings: NotifierSettings | None = None, schema: str | None = None) -> Litestar:
    settings = settings or get_settings()

    async def startup(resources: Resources) -> None:
        resources.extra["deps"] = Deps.from_settings(settings)
        resources.extra["queue"] = await shared_jobs.connect(settings.redis_url, jobs.SERVICE)

    async def shutdown(resources: Resources) -> None:
        queue = resources.extra.pop("queue", None)
        if queue is not None:
            await queue.aclose()

    return create_app(
        service=INFO.name,
        settings=settings,
        route_handlers=[WebhookEndpoints, EmailLog],
        schema=schema or INFO.schema,
        startup=startup,
        shutdown=shutdown,
        dependencies={**TX, **CALLER, **DEPENDENCIES},
    )


def worker(settings: NotifierSettings | None = None, schema: str | None = None) -> WorkerSpec:
    settings = settings or get_settings()
    schema = schema or INFO.schema or "notifier"
    Deps.from_settings(settings)  # fail at startup, not in the first job, on a bad secrets key
    return WorkerSpec(
        service=INFO.name,
        settings=settings,
        schema=schema,
        consumers=[
            # Emails and the contacts projection come from identity and billing, in stream order.
            ConsumerSpec(
                ConsumerConfig(group="notifier", streams=(IDENTITY_STREAM, BILLING_STREAM)),
                emails,
                jobs.deps_of,
            ),
            # Every domain event of a tenant may go to that tenant's webhook endpoints.
            ConsumerSpec(
                ConsumerConfig(group="notifier.webhooks", streams=DOMAIN_STREAMS),
                tenant_webhooks,
                jobs.deps_of,
            ),
        ],
        extra_tasks=[
            shared_jobs.worker_task(jobs.SERVICE, jobs.functions(settings)),
            jobs.dispatcher(schema),
        ],
    )
