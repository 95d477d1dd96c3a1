"""Errors of the billing service: each names its condition and carries a stable code."""

from __future__ import annotations

from shared.errors import AppError


class UnknownPlan(AppError):
    status = 422
    code = "unknown_plan"
    title = "No such plan"


class PlanNotPurchasable(AppError):
    status = 422
    code = "plan_not_purchasable"
    title = "This plan cannot be bought"


class SubscriptionExists(AppError):
    status = 409
    code = "subscription_exists"
    title = "The tenant already has a subscription; change it in the billing portal"


class NoSubscription(AppError):
    status = 404
    code = "no_subscription"
    title = "The tenant has no subscription"


class SubscriptionAlreadyCanceled(AppError):
    status = 409
    code = "subscription_already_canceled"
    title = "The subscription is already canceled or set to end"


class TenantRequired(AppError):
    status = 403
    code = "tenant_required"
    title = "This call needs a tenant"


class InvalidSignature(AppError):
    status = 400
    code = "invalid_signature"
    title = "The Stripe-Signature header does not match the payload"


class SignatureExpired(AppError):
    status = 400
    code = "signature_expired"
    title = "The Stripe-Signature timestamp is outside the tolerance"


class MalformedEvent(AppError):
    status = 400
    code = "malformed_event"
    title = "The webhook body is not a Stripe event"


class WebhooksNotConfigured(AppError):
    status = 503
    code = "webhooks_not_configured"
    title = "No Stripe webhook secret is configured"


class PaymentProviderUnavailable(AppError):
    status = 503
    code = "payment_provider_unavailable"
    title = "Stripe could not be reached; try again"


class PaymentProviderError(AppError):
    status = 502
    code = "payment_provider_error"
    title = "Stripe refused the request"


class ServiceCallerRequired(AppError):
    status = 403
    code = "service_caller_required"
    title = "Only platform services may call this"
