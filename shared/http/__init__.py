"""HTTP building blocks shared by every service: app factory, problem+json, middleware."""

from __future__ import annotations

from shared.http.app import Resources, create_app

__all__ = ["Resources", "create_app"]
