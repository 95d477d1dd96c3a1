"""Every error leaves as RFC 9457 problem+json with a stable `code`; never a stack trace."""

from __future__ import annotations

import logging
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException, SerializationException, ValidationException
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from shared import context
from shared.db import UNAVAILABLE
from shared.errors import AppError, Unavailable

log = logging.getLogger("catalytic.http")

PROBLEM_JSON = "application/problem+json"


class Problem(msgspec.Struct, omit_defaults=True):
    type: str
    title: str
    status: int
    code: str
    detail: str | None = None
    instance: str | None = None
    request_id: str | None = None
    errors: list[dict[str, Any]] | None = None


_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_input",
    429: "rate_limited",
}


def problem_response(
    status: int,
    code: str,
    title: str,
    detail: str | None,
    path: str | None = None,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> Response[Problem]:
    body = Problem(
        type=f"https://docs.catalytic.dev/errors/{code}",
        title=title,
        status=status,
        code=code,
        detail=detail,
        instance=path,
        request_id=context.request_id.get(),
        errors=errors,
    )
    return Response(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def app_error(request: Request[Any, Any, Any], exc: AppError) -> Response[Problem]:
    return problem_response(
        exc.status, exc.code, exc.title, exc.message, request.url.path, headers=exc.headers or None
    )


def validation_error(request: Request[Any, Any, Any], exc: ValidationException) -> Response[Problem]:
    errors = exc.extra if isinstance(exc.extra, list) else None
    return problem_response(422, "invalid_input", "Invalid input", exc.detail, request.url.path, errors)


def http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Problem]:
    status = exc.status_code
    code = _HTTP_CODES.get(status, "http_error" if status < 500 else "internal_error")
    if isinstance(exc.__cause__, SerializationException):
        code = "malformed_body"
    detail = exc.detail if status < 500 else "internal error"
    return problem_response(
        status,
        code,
        detail or code,
        detail,
        request.url.path,
        headers=dict(exc.headers) if exc.headers else None,
    )


def unexpected_error(request: Request[Any, Any, Any], exc: Exception) -> Response[Problem]:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return problem_response(
        500,
        "internal_error",
        "Internal server error",
        "The error was logged; quote the request id when reporting it.",
        request.url.path,
    )


def unavailable(request: Request[Any, Any, Any], exc: Exception) -> Response[Problem]:
    """A peer (Postgres restarting, Redis gone) is down: a retry soon is the client's right move."""
    log.warning("%s %s: a peer is unavailable (%r)", request.method, request.url.path, exc)
    message = "A backing service is briefly unavailable; retry shortly."
    return app_error(request, Unavailable(message, headers={"Retry-After": "1"}))


EXCEPTION_HANDLERS: dict[Any, Any] = {
    **dict.fromkeys((*UNAVAILABLE, RedisConnectionError, RedisTimeoutError), unavailable),
    AppError: app_error,
    ValidationException: validation_error,
    HTTPException: http_error,
    Exception: unexpected_error,
}
