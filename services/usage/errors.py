"""Errors of the usage service; `code` values are part of the public API."""

from __future__ import annotations

from shared.errors import AppError, Forbidden, NotFound


class InvalidTime(AppError):
    status = 422
    code = "invalid_time"
    title = "Invalid time"


class InvalidRange(AppError):
    status = 422
    code = "invalid_range"
    title = "`from` must be before `to`"


class RangeTooLarge(AppError):
    status = 422
    code = "range_too_large"
    title = "Time range too large for this granularity"


class InvalidCursor(AppError):
    status = 422
    code = "invalid_cursor"
    title = "Invalid cursor"


class InvalidLimit(AppError):
    status = 422
    code = "invalid_limit"
    title = "Invalid page size"


class ServiceCallerRequired(Forbidden):
    code = "service_caller_required"
    title = "Only platform services may call this"


class AuditEntryNotFound(NotFound):
    code = "not_found"
    title = "No audit entry for this event"
