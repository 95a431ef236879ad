"""Webhook endpoints, the outbox of messages to deliver to them, and every delivery attempt."""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone

from perly.ids import id_factory
from perly.models import Workspace


class EndpointStatus(models.TextChoices):
    ENABLED = "enabled"
    DISABLED = "disabled"


class MessageStatus(models.TextChoices):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


class AttemptOutcome(models.TextChoices):
    DELIVERED = "delivered"
    RETRYING = "retrying"
    FAILED = "failed"
    ENDPOINT_DISABLED = "endpoint_disabled"


class WebhookEndpoint(models.Model):
    """A URL a workspace receives signed events at; secrets are stored encrypted."""

    id = models.CharField(primary_key=True, max_length=32, default=id_factory("we"), editable=False)
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="webhook_endpoints")
    url = models.CharField(max_length=2048)
    description = models.CharField(max_length=500, null=True, blank=True)
    events = models.JSONField(default=list)
    # `active` is the user's switch; `status` is set by Perly (410, failing for days) or staff.
    active = models.BooleanField(default=True)
    status = models.CharField(max_length=16, choices=EndpointStatus.choices, default=EndpointStatus.ENABLED)
    disabled_reason = models.CharField(max_length=500, null=True, blank=True)
    disabled_at = models.DateTimeField(null=True, blank=True)
    secret_encrypted = models.TextField(editable=False)
    # After a rotation the old secret keeps signing (a second signature) until it expires.
    previous_secret_encrypted = models.TextField(null=True, blank=True, editable=False)
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True)
    # Start of the current run of failed attempts; cleared by any success (auto-disable after 5 days).
    failing_since = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["workspace", "id"], name="webhook_endpoint_ws_id")]

    def __str__(self) -> str:
        return f"{self.id} {self.url}"

    @property
    def deliverable(self) -> bool:
        return self.active and self.status == EndpointStatus.ENABLED


class WebhookMessage(models.Model):
    """One event for one endpoint: the outbox row, written in the transaction of the change."""

    id = models.CharField(primary_key=True, max_length=32, default=id_factory("msg"), editable=False)
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="messages")
    event_type = models.CharField(max_length=64)
    # The exact body that is signed and sent, serialized once at publish time.
    payload = models.TextField()
    status = models.CharField(max_length=16, choices=MessageStatus.choices, default=MessageStatus.PENDING)
    attempt_count = models.PositiveIntegerField(default=0)
    # Automatic retries used from RETRY_SCHEDULE_SECONDS; a manual retry starts it over.
    retry_step = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    # Set when a task was queued for the due attempt; the sweeper re-queues only stale or unset ones.
    enqueued_at = models.DateTimeField(null=True, blank=True)
    # A worker's claim on the row while it sends (claimed with a conditional UPDATE).
    locked_until = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=500, null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["endpoint", "id"], name="webhook_msg_endpoint_id"),
            models.Index(fields=["endpoint", "status", "id"], name="webhook_msg_endpoint_status"),
            models.Index(fields=["next_attempt_at"], condition=Q(status="pending"), name="webhook_msg_due"),
            models.Index(fields=["created_at"], name="webhook_msg_created"),
        ]

    def __str__(self) -> str:
        return self.id


class WebhookAttempt(models.Model):
    """One HTTP attempt to deliver a message: what we got back, how long it took, what went wrong."""

    message = models.ForeignKey(WebhookMessage, on_delete=models.CASCADE, related_name="attempts")
    attempt_number = models.PositiveIntegerField()
    outcome = models.CharField(max_length=20, choices=AttemptOutcome.choices)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(default=0)
    response_body = models.TextField(blank=True, default="")
    error = models.CharField(max_length=500, null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["message", "attempt_number"], name="webhook_attempt_message")]

    def __str__(self) -> str:
        return f"{self.message_id} #{self.attempt_number}"
