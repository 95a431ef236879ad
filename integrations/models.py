from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone

from perly.ids import id_factory
from perly.models import Workspace


class Provider(models.TextChoices):
    STRIPE = "stripe", "Stripe"
    HUBSPOT = "hubspot", "HubSpot"
    SALESFORCE = "salesforce", "Salesforce"


class IntegrationStatus(models.TextChoices):
    ACTIVE = "active"
    SYNCING = "syncing"
    ERROR = "error"
    NEEDS_REAUTH = "needs_reauth"
    DISCONNECTED = "disconnected"


class SyncStatus(models.TextChoices):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    PARTIAL = "partial"
    FAILED = "failed"


class SyncTrigger(models.TextChoices):
    INITIAL = "initial"
    MANUAL = "manual"
    SCHEDULED = "scheduled"


ACTIVE_SYNC_STATUSES = (SyncStatus.QUEUED, SyncStatus.RUNNING)


class Integration(models.Model):
    """A workspace's connection to one provider account (credentials encrypted at rest)."""

    id = models.CharField(primary_key=True, max_length=32, default=id_factory("int"), editable=False)
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="integrations")
    provider = models.CharField(max_length=20, choices=Provider.choices)
    status = models.CharField(
        max_length=20, choices=IntegrationStatus.choices, default=IntegrationStatus.ACTIVE
    )
    # MultiFernet token of the credentials JSON; "" once disconnected. Never leaves the server.
    credentials_encrypted = models.TextField(blank=True, default="", editable=False)
    # What the API shows instead: e.g. {"api_key": "sk_…9xYz"}.
    credentials_hint = models.JSONField(default=dict, blank=True, editable=False)
    config = models.JSONField(default=dict, blank=True)
    last_synced_at = models.DateTimeField(null=True, blank=True)
    next_sync_at = models.DateTimeField(null=True, blank=True)
    # Signals are recomputed for customers whose provider records changed after this instant.
    signals_computed_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now, editable=False)
    disconnected_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "provider"],
                condition=~Q(status="disconnected"),
                name="integration_one_live_per_provider",
            )
        ]
        indexes = [
            models.Index(
                fields=["next_sync_at"],
                name="integration_due_idx",
                condition=Q(status__in=["active", "error"]),
            )
        ]

    def __str__(self) -> str:
        return f"{self.provider} ({self.id})"


class SyncRun(models.Model):
    """One execution of an integration's sync: who started it, how it went, what it did."""

    id = models.CharField(primary_key=True, max_length=32, default=id_factory("sync"), editable=False)
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    integration = models.ForeignKey(Integration, on_delete=models.CASCADE, related_name="sync_runs")
    status = models.CharField(max_length=20, choices=SyncStatus.choices, default=SyncStatus.QUEUED)
    trigger = models.CharField(max_length=20, choices=SyncTrigger.choices)
    stats = models.JSONField(default=dict, blank=True)
    error = models.TextField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Touched on every committed page; a running run whose heartbeat stops is reaped as failed.
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            # At most one queued-or-running run per integration: the database enforces it.
            models.UniqueConstraint(
                fields=["integration"],
                condition=Q(status__in=["queued", "running"]),
                name="syncrun_one_active_per_integration",
            )
        ]
        indexes = [
            models.Index(
                fields=["status", "heartbeat_at"],
                name="syncrun_active_idx",
                condition=Q(status__in=["queued", "running"]),
            )
        ]

    def __str__(self) -> str:
        return f"{self.id} ({self.status})"


class StreamState(models.Model):
    """The persisted cursor of one stream of one integration (committed with each page)."""

    integration = models.ForeignKey(Integration, on_delete=models.CASCADE, related_name="stream_states")
    stream = models.CharField(max_length=50)
    cursor = models.JSONField(default=dict, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["integration", "stream"], name="streamstate_unique_stream")
        ]


class SyncedRecord(models.Model):
    """A provider object as last read (trimmed), keyed by (integration, stream, provider id).

    Account-like records (Stripe customers, HubSpot companies, Salesforce accounts) carry the
    Perly customer they map to; child records (subscriptions, deals, cases...) name their parent.
    """

    # No single-column indexes on the foreign keys (and so no varchar_pattern_ops twins): the
    # unique (integration, stream, provider_id) and the indexes below lead with integration, and
    # (customer, integration) serves both a customer's deletion and the signals' per-customer read.
    integration = models.ForeignKey(Integration, on_delete=models.CASCADE, related_name="+", db_index=False)
    stream = models.CharField(max_length=50)
    provider_id = models.CharField(max_length=255)
    parent_id = models.CharField(max_length=255, null=True, blank=True)
    customer = models.ForeignKey(
        "customers.Customer",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
    )
    data = models.JSONField(default=dict)
    # Provider-side version (epoch seconds): an older event snapshot never overwrites a newer read.
    version = models.BigIntegerField(default=0)
    synced_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["integration", "stream", "provider_id"], name="syncedrecord_unique_object"
            )
        ]
        indexes = [
            models.Index(fields=["integration", "parent_id"], name="syncedrecord_parent_idx"),
            models.Index(fields=["integration", "synced_at"], name="syncedrecord_synced_idx"),
            models.Index(fields=["customer", "integration"], name="syncedrecord_customer_idx"),
        ]
