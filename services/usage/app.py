"""Composition root of the usage service: HTTP app and worker."""

from __future__ import annotations

from litestar import Litestar

from services.usage import ingest, jobs, tasks
from services.usage.api import AuditController, PlatformController, UsageController
from services.usage.consumers import audit
from services.usage.settings import get_settings
from shared.bus import ConsumerConfig
from shared.events import DOMAIN_STREAMS
from shared.http import create_app
from shared.http.caller import CALLER
from shared.http.deps import TX
from shared.platform import service
from shared.worker import ConsumerSpec, WorkerSpec

INFO = service("usage")
AUDIT_GROUP = "usage.audit"


def app() -> Litestar:
    settings = get_settings()
    return create_app(
        service=INFO.name,
        settings=settings,
        route_handlers=[UsageController, AuditController, PlatformController],
        schema=INFO.schema,
        dependencies={**TX, **CALLER},
    )


def worker() -> WorkerSpec:
    settings = get_settings()
    audit_config = ConsumerConfig(
        group=AUDIT_GROUP,
        streams=DOMAIN_STREAMS,
        claim_idle_ms=settings.claim_idle_ms,
        claim_interval_s=settings.claim_interval_seconds,
    )
    return WorkerSpec(
        service=INFO.name,
        settings=settings,
        schema=INFO.schema,
        relay=True,  # publishes usage.api_keys.used from the outbox
        consumers=[ConsumerSpec(audit_config, audit)],
        extra_tasks=[
            ingest.run,
            tasks.quota_keeper,
            tasks.key_use_publisher,
            tasks.stream_trimmer,
            jobs.task,
        ],
    )
