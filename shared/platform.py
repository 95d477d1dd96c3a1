"""The services of the platform and where their parts live."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SERVICES_DIR = Path(__file__).resolve().parent.parent / "services"


@dataclass(frozen=True)
class ServiceInfo:
    name: str
    port: int
    schema: str | None  # None: keeps no Postgres state (the gateway)

    @property
    def migrations(self) -> Path:
        return SERVICES_DIR / self.name / "migrations"

    @property
    def runtime_role(self) -> str | None:
        return f"{self.schema}_svc" if self.schema else None

    def module(self, part: str = "app") -> Any:
        return importlib.import_module(f"services.{self.name}.{part}")


SERVICES: dict[str, ServiceInfo] = {
    s.name: s
    for s in (
        ServiceInfo("gateway", 8000, None),
        ServiceInfo("identity", 8001, "identity"),
        ServiceInfo("billing", 8002, "billing"),
        ServiceInfo("notifier", 8003, "notifier"),
        ServiceInfo("usage", 8004, "usage"),
    )
}


def service(name: str) -> ServiceInfo:
    try:
        return SERVICES[name]
    except KeyError:
        raise SystemExit(f"unknown service {name!r}; choose from {', '.join(SERVICES)}") from None
