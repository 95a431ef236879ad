from __future__ import annotations

from collections.abc import Iterable

import orjson
from django.utils import timezone
from rest_framework import serializers

from customers.selectors import live_customer_ids
from perly.api import StrictSerializerMixin
from perly.scopes import embedded_event, event_customer
from perly.timestamps import iso
from webhooks.catalog import WILDCARD, valid_subscriptions
from webhooks.models import EndpointStatus, MessageStatus, WebhookAttempt, WebhookEndpoint, WebhookMessage
from webhooks.ssrf import InvalidWebhookUrl, validate_url_syntax


def endpoint_representation(endpoint: WebhookEndpoint, secret: str | None = None) -> dict:
    """The API object. The secret appears only when passed (create and rotate responses)."""
    previous_expires = endpoint.previous_secret_expires_at
    if previous_expires is not None and previous_expires <= timezone.now():
        previous_expires = None
    data = {
        "id": endpoint.id,
        "object": "webhook_endpoint",
        "url": endpoint.url,
        "description": endpoint.description,
        "events": list(endpoint.events),
        "active": endpoint.active,
        "status": endpoint.status,
        "disabled_reason": endpoint.disabled_reason,
        "previous_secret_expires_at": iso(previous_expires),
        "created_at": iso(endpoint.created_at),
        "updated_at": iso(endpoint.updated_at),
    }
    if secret is not None:
        data["secret"] = secret
    return data


def attempt_representation(attempt: WebhookAttempt) -> dict:
    return {
        "object": "webhook_attempt",
        "attempt_number": attempt.attempt_number,
        "outcome": attempt.outcome,
        "status_code": attempt.status_code,
        "duration_ms": attempt.duration_ms,
        "response_body": attempt.response_body,
        "error": attempt.error,
        "created_at": iso(attempt.created_at),
    }


def _event(message: WebhookMessage) -> dict:
    if not hasattr(message, "_event"):
        message._event = orjson.loads(message.payload)
    return message._event


def gone_customers(workspace_id: str, messages: Iterable[WebhookMessage]) -> frozenset[str]:
    """The deleted (or purged) customers these messages are about: their payloads are read
    back by reference only. One query for a page."""
    about = {event_customer(_event(message)) for message in messages} - {None}
    return frozenset(about - live_customer_ids(workspace_id=workspace_id, ids=about))


def message_representation(
    message: WebhookMessage, *, scopes: frozenset[str], gone: frozenset[str] = frozenset()
) -> dict:
    """`scopes` are the reading key's: the payload's object is shown by perly.scopes' rule;
    `gone` are gone_customers()."""
    pending = message.status == MessageStatus.PENDING
    return {
        "id": message.id,
        "object": "webhook_message",
        "endpoint": message.endpoint_id,
        "type": message.event_type,
        "status": message.status,
        "attempt_count": message.attempt_count,
        "next_attempt_at": iso(message.next_attempt_at) if pending else None,
        "delivered_at": iso(message.delivered_at),
        "last_error": message.last_error,
        "created_at": iso(message.created_at),
        "event": embedded_event(scopes, _event(message), gone),
        "attempts": [attempt_representation(a) for a in message.attempts.all()],
    }


def _no_control_characters(value: str | None) -> str | None:
    # Nothing a user writes may smuggle CR/LF (or other controls) towards HTTP headers or logs.
    if value is not None and any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise serializers.ValidationError("must not contain control characters (such as line breaks).")
    return value


class WebhookEndpointSerializer(StrictSerializerMixin, serializers.Serializer):
    """A URL that receives signed webhook events."""

    id = serializers.CharField(read_only=True)
    object = serializers.CharField(read_only=True, default="webhook_endpoint")
    url = serializers.CharField(
        trim_whitespace=False,  # the length rule lives in validate_url_syntax, with its own message
        help_text="Absolute https:// URL, at most 2,048 characters, no credentials. Its host must resolve "
        "only to public addresses: a refused address is a 400 url_not_allowed; a host that does not resolve "
        "yet is accepted and checked again on every attempt.",
    )
    description = serializers.CharField(max_length=500, allow_null=True, allow_blank=True, required=False)
    events = serializers.ListField(
        child=serializers.CharField(max_length=64),
        allow_empty=True,
        help_text='Event types to receive, or ["*"] for all: ' + ", ".join(valid_subscriptions()[1:]) + ".",
    )
    active = serializers.BooleanField(
        required=False, help_text="Your switch: inactive endpoints get nothing."
    )
    status = serializers.ChoiceField(
        choices=EndpointStatus.choices,
        required=False,
        help_text="Set by Perly (410, five days of failures) or staff; PATCH `enabled` to resume. Read-only at creation.",
    )
    disabled_reason = serializers.CharField(read_only=True, allow_null=True)
    previous_secret_expires_at = serializers.DateTimeField(read_only=True, allow_null=True)
    created_at = serializers.DateTimeField(read_only=True)
    updated_at = serializers.DateTimeField(read_only=True)

    def __init__(self, *args, creating: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        if creating:
            # status is Perly's to set at creation; a new endpoint starts enabled.
            self.fields["status"].read_only = True

    def validate_url(self, value: str) -> str:
        try:
            validate_url_syntax(value)
        except InvalidWebhookUrl as exc:
            raise serializers.ValidationError(str(exc))
        return value

    def validate_description(self, value: str | None) -> str | None:
        return _no_control_characters(value)

    def validate_events(self, value: list[str]) -> list[str]:
        if not value:
            raise serializers.ValidationError(
                'events must list at least one event type, or be ["*"] for all of them.'
            )
        valid = valid_subscriptions()
        unknown = [name for name in value if name not in valid]
        if unknown:
            raise serializers.ValidationError(
                f"Unknown event type{'s' if len(unknown) > 1 else ''}: {', '.join(map(repr, unknown))}. "
                f"Valid types: {', '.join(valid)}."
            )
        if WILDCARD in value and len(set(value)) > 1:
            raise serializers.ValidationError('"*" already means every event type; send it alone.')
        return list(dict.fromkeys(value))

    def to_representation(self, instance: WebhookEndpoint) -> dict:
        return endpoint_representation(instance)


class WebhookEndpointWithSecretSerializer(WebhookEndpointSerializer):
    secret = serializers.CharField(read_only=True, help_text="whsec_... Shown only by create and rotate.")


class WebhookAttemptSerializer(serializers.Serializer):
    object = serializers.CharField(default="webhook_attempt")
    attempt_number = serializers.IntegerField()
    outcome = serializers.CharField()
    status_code = serializers.IntegerField(allow_null=True)
    duration_ms = serializers.IntegerField()
    response_body = serializers.CharField(help_text="Up to 4 KB of the receiver's answer.")
    error = serializers.CharField(allow_null=True)
    created_at = serializers.DateTimeField()


class WebhookMessageSerializer(serializers.Serializer):
    id = serializers.CharField()
    object = serializers.CharField(default="webhook_message")
    endpoint = serializers.CharField()
    type = serializers.CharField()
    status = serializers.ChoiceField(choices=MessageStatus.choices)
    attempt_count = serializers.IntegerField()
    next_attempt_at = serializers.DateTimeField(allow_null=True)
    delivered_at = serializers.DateTimeField(allow_null=True)
    last_error = serializers.CharField(allow_null=True)
    created_at = serializers.DateTimeField()
    event = serializers.JSONField(
        help_text="The payload as delivered. Its data.object is shown in full only to a key that may read "
        "that object's resource (customers:read for a customer, health:read for a health_score, ...) and "
        "only while the customer it is about is not deleted; otherwise it is reduced to its reference "
        "(a customer's id) and previous_attributes to {}."
    )
    attempts = WebhookAttemptSerializer(many=True)

    def to_representation(self, instance: WebhookMessage) -> dict:
        return message_representation(
            instance,
            scopes=self.context["request"].auth.scopes,
            gone=self.context.get("gone_customers", frozenset()),
        )
