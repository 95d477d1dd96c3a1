"""`catalytic import-legacy`: the old single-database monolith into the per-service schemas."""

from __future__ import annotations

from shared.ops.legacy.importer import run
from shared.ops.legacy.report import Report
from shared.ops.legacy.source import LegacyError

__all__ = ["LegacyError", "Report", "run"]
