"""Authentication failures; the codes are part of the public API."""

from __future__ import annotations

from shared.errors import AppError, Forbidden, Unauthorized


class TokenInvalid(Unauthorized):
    code = "token_invalid"
    title = "Invalid access token"


class TokenExpired(Unauthorized):
    code = "token_expired"
    title = "Access token expired"


class TokenRevoked(Unauthorized):
    code = "token_revoked"
    title = "Access token revoked"


class ApiKeyInvalid(Unauthorized):
    code = "api_key_invalid"
    title = "Invalid API key"


class AssertionMissing(Unauthorized):
    code = "assertion_missing"
    title = "Request did not come through the gateway"


class AssertionInvalid(Unauthorized):
    code = "assertion_invalid"
    title = "Invalid gateway assertion"


class InsufficientRole(Forbidden):
    code = "insufficient_role"
    title = "Your role does not allow this"


class InsufficientScope(Forbidden):
    code = "insufficient_scope"
    title = "The API key lacks the scope for this"


class LoginRequired(Unauthorized):
    code = "unauthorized"
    title = "Authentication required"


__all__ = [
    "ApiKeyInvalid",
    "AppError",
    "AssertionInvalid",
    "AssertionMissing",
    "InsufficientRole",
    "InsufficientScope",
    "LoginRequired",
    "TokenExpired",
    "TokenInvalid",
    "TokenRevoked",
]
