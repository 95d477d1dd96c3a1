"""Composition root of the usage service: HTTP app and worker."""

from __future__ import annotations

from litestar import Litestar

from services.usage.api import PlatformController
from services.usage.consumers import audit
from services.usage.settings import get_settings
from shared.bus import ConsumerConfig
from shared.events import DOMAIN_STREAMS
from shared.http import create_app
from shared.http.deps import TX
from shared.platform import service
from shared.worker import ConsumerSpec, WorkerSpec

INFO = service("usage")


def app() -> Litestar:
    settings = get_settings()
    return create_app(
        service=INFO.name,
        settings=settings,
        route_handlers=[PlatformController],
        schema=INFO.schema,
        dependencies=TX,
    )


def worker() -> WorkerSpec:
    return WorkerSpec(
        service=INFO.name,
        settings=get_settings(),
        schema=INFO.schema,
        relay=False,
        consumers=[ConsumerSpec(ConsumerConfig(group="usage.audit", streams=DOMAIN_STREAMS), audit)],
    )
