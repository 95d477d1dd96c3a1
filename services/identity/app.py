"""Composition root of the identity service: HTTP app and worker."""

from __future__ import annotations

from litestar import Litestar

from services.identity.api import PlatformController
from services.identity.settings import get_settings
from shared.http import create_app
from shared.http.deps import TX
from shared.platform import service
from shared.worker import WorkerSpec

INFO = service("identity")


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
    return WorkerSpec(service=INFO.name, settings=get_settings(), schema=INFO.schema)
