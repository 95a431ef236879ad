from __future__ import annotations

from django.db import models
from django.utils import timezone

from perly.ids import id_factory
from perly.models import Workspace


class LifecycleStage(models.TextChoices):
    TRIAL = "trial"
    ONBOARDING = "onboarding"
    ACTIVE = "active"
    CHURNED = "churned"


class HealthStatus(models.TextChoices):
    HEALTHY = "healthy"
    NEUTRAL = "neutral"
    AT_RISK = "at_risk"
    # A customer with a churned_at (at or before the scoring time): still scored, so its history
    # and backtests stay whole, but never shown as healthy and never on the at-risk list.
    CHURNED = "churned"
    UNKNOWN = "unknown"


class LiveCustomerManager(models.Manager):
    """Customers not marked deleted: a deleted customer answers 404 while its data is purged."""

    def get_queryset(self):
        return super().get_queryset().filter(deleted_at__isnull=True)


class Customer(models.Model):
    """One of a workspace's own customers, whose health Perly scores."""

    id = models.CharField(primary_key=True, max_length=32, default=id_factory("cus"), editable=False)
    # db_index=False: every index in Meta leads with workspace. A rescore's mirror update of a
    # customer whose health_score moved writes every index of the row, so a redundant one (and
    # its varchar_pattern_ops twin) is paid for on each such update and each insert.
    workspace = models.ForeignKey(
        Workspace, on_delete=models.CASCADE, related_name="customers", db_index=False
    )
    name = models.CharField(max_length=200)
    email = models.EmailField(max_length=254, null=True, blank=True)
    domain = models.CharField(max_length=253, null=True, blank=True)
    external_id = models.CharField(max_length=255, null=True, blank=True)
    plan = models.CharField(max_length=100, null=True, blank=True)
    owner = models.EmailField(max_length=254, null=True, blank=True)
    lifecycle_stage = models.CharField(max_length=20, choices=LifecycleStage.choices, null=True, blank=True)
    # When the customer churned; cleared by a win-back. The full record is in Outcome.
    churned_at = models.DateTimeField(null=True, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    # The current health, denormalized here (written by health.services) so customer lists
    # and their health filters need no join.
    health_score = models.FloatField(null=True, blank=True, editable=False)
    health_status = models.CharField(
        max_length=10, choices=HealthStatus.choices, null=True, blank=True, editable=False
    )
    health_computed_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now, editable=False)
    deleted_at = models.DateTimeField(null=True, blank=True, editable=False)

    objects = LiveCustomerManager()
    all_objects = models.Manager()  # noqa: DJ012

    class Meta:
        base_manager_name = "all_objects"
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "external_id"],
                condition=models.Q(external_id__isnull=False),
                name="customer_external_id_unique",
                violation_error_message="A customer with this external_id already exists in this workspace.",
            )
        ]
        indexes = [
            # Newest-first pages of one workspace: an index range scan at any depth.
            models.Index(fields=["workspace", "-id"], name="customer_ws_id_idx"),
            models.Index(fields=["workspace", "email"], name="customer_ws_email_idx"),
            models.Index(fields=["workspace", "domain"], name="customer_ws_domain_idx"),
            models.Index(fields=["workspace", "plan"], name="customer_ws_plan_idx"),
            models.Index(fields=["workspace", "health_status"], name="customer_ws_health_idx"),
            models.Index(fields=["workspace", "health_score"], name="customer_ws_score_idx"),
            # churned_after / churned_before: churned customers only, so the index stays small.
            models.Index(
                fields=["workspace", "churned_at"],
                name="customer_ws_churned_idx",
                condition=models.Q(churned_at__isnull=False),
            ),
            models.Index(
                fields=["deleted_at"],
                name="customer_deleted_idx",
                condition=models.Q(deleted_at__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.id})"


class OutcomeKind(models.TextChoices):
    CHURNED = "churned"
    REACTIVATED = "reactivated"


class OutcomeSource(models.TextChoices):
    API = "api"
    ADMIN = "admin"
    STRIPE = "stripe"


class Outcome(models.Model):
    """A recorded churn or win-back: the labels that backtests, fits and cohorts are measured on.

    Kept after a win-back clears the customer's churned_at, so past churn stays countable."""

    id = models.CharField(primary_key=True, max_length=32, default=id_factory("out"), editable=False)
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="outcomes")
    kind = models.CharField(max_length=20, choices=OutcomeKind.choices)
    at = models.DateTimeField()
    source = models.CharField(max_length=10, choices=OutcomeSource.choices)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [
            models.Index(fields=["customer", "-at"], name="outcome_customer_at_idx"),
            models.Index(fields=["workspace", "kind", "at"], name="outcome_ws_kind_at_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.customer_id} at {self.at:%Y-%m-%d}"
