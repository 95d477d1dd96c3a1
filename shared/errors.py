"""Errors that carry their HTTP status and a stable machine-readable code."""

from __future__ import annotations

from typing import Any, ClassVar


class AppError(Exception):
    """Base of every expected failure; one handler turns it into problem+json.

    Subclasses name the condition and set `status` and `code` as class attributes;
    `code` is part of the public API and must never change once released.
    """

    status: ClassVar[int] = 400
    code: ClassVar[str] = "bad_request"
    title: ClassVar[str] = "Bad request"

    def __init__(
        self,
        message: str | None = None,
        *,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message or self.title)
        self.message = message or self.title
        self.headers = headers or {}
        self.extra = extra or {}


class NotFound(AppError):
    status = 404
    code = "not_found"
    title = "Not found"


class Conflict(AppError):
    status = 409
    code = "conflict"
    title = "Conflict"


class Unauthorized(AppError):
    status = 401
    code = "unauthorized"
    title = "Authentication required"


class Forbidden(AppError):
    status = 403
    code = "forbidden"
    title = "Forbidden"


class InvalidInput(AppError):
    status = 422
    code = "invalid_input"
    title = "Invalid input"


class RateLimited(AppError):
    status = 429
    code = "rate_limited"
    title = "Too many requests"


class Unavailable(AppError):
    status = 503
    code = "unavailable"
    title = "Service unavailable"
