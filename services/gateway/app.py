"""Composition root of the gateway service: HTTP app and worker."""

from __future__ import annotations

from litestar import Litestar

from services.gateway.settings import get_settings
from shared.http import create_app
from shared.platform import service
from shared.worker import WorkerSpec

INFO = service("gateway")


def app() -> Litestar:
    return create_app(service=INFO.name, settings=get_settings(), route_handlers=[], behind_gateway=False)


def worker() -> WorkerSpec | None:
    return None  # the gateway keeps no Postgres state; its consumers run in-process
