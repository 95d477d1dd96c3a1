"""Failures of the notifier service; the codes are part of the public API."""

from __future__ import annotations

from shared.errors import AppError, Conflict, InvalidInput, NotFound


class WebhookEndpointNotFound(NotFound):
    code = "webhook_endpoint_not_found"
    title = "Webhook endpoint not found"


class WebhookDeliveryNotFound(NotFound):
    code = "webhook_delivery_not_found"
    title = "Webhook delivery not found"


class WebhookUrlInvalid(InvalidInput):
    code = "webhook_url_invalid"
    title = "Invalid webhook URL"


class WebhookUrlForbidden(InvalidInput):
    code = "webhook_url_forbidden"
    title = "Webhook URL points to a forbidden address"


class UnknownEventType(InvalidInput):
    code = "unknown_event_type"
    title = "Unknown event type"


class WebhookEndpointLimit(Conflict):
    code = "webhook_endpoint_limit"
    title = "Too many webhook endpoints"


class WebhookEndpointDisabled(Conflict):
    code = "webhook_endpoint_disabled"
    title = "Webhook endpoint is disabled"


class TenantRequired(AppError):
    status = 403
    code = "tenant_required"
    title = "This call needs a tenant"
