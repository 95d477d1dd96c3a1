"""What the gateway itself refuses; codes are part of the public API."""

from __future__ import annotations

from shared.errors import AppError, Forbidden, NotFound, RateLimited, Unavailable


class RouteNotFound(NotFound):
    code = "route_not_found"
    title = "No service serves this path"


class BadPath(AppError):
    status = 400
    code = "bad_path"
    title = "Path not accepted"


class RateLimitExceeded(RateLimited):
    code = "rate_limited"
    title = "Too many requests"


class QuotaExceeded(RateLimited):
    code = "quota_exceeded"
    title = "Monthly API call quota used up"


class PayloadTooLarge(AppError):
    status = 413
    code = "payload_too_large"
    title = "Request body too large"


class CorsOriginDenied(Forbidden):
    code = "cors_origin_denied"
    title = "Origin not allowed"


class UpstreamUnavailable(AppError):
    status = 502
    code = "upstream_unavailable"
    title = "The service behind this path is not answering"


class UpstreamTimeout(AppError):
    status = 504
    code = "upstream_timeout"
    title = "The service behind this path took too long"


class IdentityUnavailable(Unavailable):
    code = "identity_unavailable"
    title = "Credentials cannot be checked right now"


class LimiterUnavailable(Unavailable):
    code = "limiter_unavailable"
    title = "Limits cannot be checked right now"


class Starting(Unavailable):
    code = "starting"
    title = "The gateway is starting"
