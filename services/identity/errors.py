"""Failures of the identity service; each `code` is part of the public API."""

from __future__ import annotations

from shared.errors import AppError, Conflict, Forbidden, InvalidInput, NotFound, RateLimited, Unauthorized
from shared.errors import Unavailable as _Unavailable


class InvalidEmail(InvalidInput):
    code = "invalid_email"
    title = "Not a valid email address"


class WeakPassword(InvalidInput):
    code = "weak_password"
    title = "Password too weak"


class PasswordTooShort(WeakPassword):
    code = "password_too_short"


class PasswordTooLong(WeakPassword):
    code = "password_too_long"


class PasswordTooCommon(WeakPassword):
    code = "password_too_common"


class PasswordContainsPersonalInfo(WeakPassword):
    code = "password_contains_personal_info"


class EmailTaken(Conflict):
    code = "email_taken"
    title = "An account with this email already exists"


class InvalidCredentials(Unauthorized):
    code = "invalid_credentials"
    title = "Wrong email or password"


class LoginThrottled(RateLimited):
    code = "login_throttled"
    title = "Too many failed logins; try again later"


class PasswordHashBusy(_Unavailable):
    code = "busy"
    title = "Too many logins at once; retry shortly"


class RefreshTokenInvalid(Unauthorized):
    code = "refresh_token_invalid"
    title = "Refresh token is invalid, expired or revoked"


class RefreshTokenReused(Unauthorized):
    code = "refresh_token_reused"
    title = "Refresh token was already used; every session of this login was revoked"


class UserSessionRequired(Forbidden):
    code = "user_session_required"
    title = "Only a signed-in user can do this (not an API key)"


class ResetTokenInvalid(AppError):
    status = 400
    code = "reset_token_invalid"
    title = "Password reset link is invalid, used or expired"


class VerificationTokenInvalid(AppError):
    status = 400
    code = "verification_token_invalid"
    title = "Verification link is invalid, used or expired"


class InvitationInvalid(AppError):
    status = 400
    code = "invitation_invalid"
    title = "Invitation is invalid, used, revoked or expired"


class EmailAlreadyVerified(Conflict):
    code = "email_already_verified"
    title = "Email address is already verified"


class WrongPassword(Forbidden):
    code = "wrong_password"
    title = "Current password is wrong"


class UserNotFound(NotFound):
    code = "user_not_found"
    title = "No such user in this tenant"


class SessionNotFound(NotFound):
    code = "session_not_found"
    title = "No such active session of yours"


class InvitationNotFound(NotFound):
    code = "invitation_not_found"
    title = "No such pending invitation in this tenant"


class ApiKeyNotFound(NotFound):
    code = "api_key_not_found"
    title = "No such active API key in this tenant"


class TenantNotFound(NotFound):
    code = "tenant_not_found"
    title = "Tenant not found"


class OwnerRoleRequired(Forbidden):
    code = "owner_required"
    title = "Only an owner may grant, change or remove the owner role"


class LastOwner(Conflict):
    code = "last_owner"
    title = "A tenant must keep at least one owner"


class SeatLimitReached(Conflict):
    code = "seat_limit_reached"
    title = "Every seat of this plan is taken"


class ApiKeyLimitReached(Conflict):
    code = "api_key_limit_reached"
    title = "This plan allows no more API keys"


class InvitationPending(Conflict):
    code = "invitation_pending"
    title = "This email already has a pending invitation"


class InvalidScope(InvalidInput):
    code = "invalid_scope"
    title = "Invalid API key scope"


class InvalidExpiry(InvalidInput):
    code = "invalid_expiry"
    title = "expires_at must be in the future"


class ServiceCallerRequired(Forbidden):
    code = "service_only"
    title = "Only the gateway may call this"
