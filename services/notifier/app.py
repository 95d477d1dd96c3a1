"""Composition root of the notifier service: HTTP app and worker."""

from __future__ import annotations

from litestar import Litestar

from services.notifier.settings import get_settings
from shared.http import create_app
from shared.platform import service
from shared.worker import WorkerSpec

INFO = service("notifier")


def app() -> Litestar:
    return create_app(
        service=INFO.name,
        settings=get_settings(),
        route_handlers=[],
        schema=INFO.schema,
    )


def worker() -> WorkerSpec:
    return WorkerSpec(service=INFO.name, settings=get_settings(), schema=INFO.schema)
