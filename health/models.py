from __future__ import annotations

from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.utils import timezone

from customers.models import Customer, HealthStatus
from perly.ids import id_factory
from perly.models import Workspace

# Customer FKs are DO_NOTHING: a purged customer's rows are deleted in batches by
# health.services.customer_health_purge (registered with customers.hooks), not by the ORM collector.


class HealthModel(models.Model):
    """One version of a workspace's scoring model; a change is a new row, never an edit."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    version = models.PositiveIntegerField()
    weights = models.JSONField(default=dict)
    # The workspace-defined metrics this version scores with (health.metrics definitions, in key
    # order): a version stays reproducible after its metrics change.
    metrics = models.JSONField(default=list)
    healthy_threshold = models.FloatField(default=70.0)
    at_risk_threshold = models.FloatField(default=40.0)
    created_by = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["workspace", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "version"], name="health_model_version_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.workspace_id} v{self.version}"

    def status_for(self, score: float | None) -> str:
        if score is None:
            return HealthStatus.UNKNOWN
        if score >= self.healthy_threshold:
            return HealthStatus.HEALTHY
        if score < self.at_risk_threshold:
            return HealthStatus.AT_RISK
        return HealthStatus.NEUTRAL


class Metric(models.Model):
    """A workspace-defined metric as currently defined (health.metrics); every change also makes
    a new HealthModel version that carries the definitions."""

    id = models.CharField(primary_key=True, max_length=32, default=id_factory("met"), editable=False)
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+", db_index=False)
    key = models.CharField(max_length=67)
    definition = models.JSONField()
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["workspace", "key"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "key"], name="health_metric_workspace_key_unique"),
        ]

    def __str__(self) -> str:
        return self.key


class ExternalSignal(models.Model):
    """A signal written by an integration (billing, support, CRM), replaced per source."""

    # db_index=False on both foreign keys: (workspace, customer) and the unique (customer, key)
    # lead with the same columns, and every index is written on each sync's upsert.
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+", db_index=False)
    customer = models.ForeignKey(
        Customer, on_delete=models.DO_NOTHING, related_name="+", db_constraint=False, db_index=False
    )
    source = models.CharField(max_length=50)
    key = models.CharField(max_length=100)
    category = models.CharField(max_length=20)
    label = models.CharField(max_length=200)
    value = models.FloatField(null=True)
    unit = models.CharField(max_length=50, blank=True)
    score = models.FloatField()
    computed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["customer", "key"], name="external_signal_customer_key_unique"),
        ]
        indexes = [models.Index(fields=["workspace", "customer"], name="external_signal_ws_cus_idx")]


# The event signals' breakdown is stored as three float8 arrays, in the order of the row's model
# version's event signals (health.metrics.model_specs: the built-ins and the workspace's metrics,
# by key); the weight of a present signal is its model version's. health.representation builds
# the signal objects on read. Fixed per-signal columns cannot hold workspace-defined metrics, and
# arrays keep the rollup's write as cheap as those columns were (three values per row instead of
# ~1.3 kB of JSON per customer, no row per signal to insert and index).
ARRAY_COLUMNS = ("signal_values", "signal_scores", "signal_contributions")


class CustomerHealth(models.Model):
    """A customer's current score with the signals and contributions that produced it.

    The event signals' value, score and contribution are the ARRAY_COLUMNS (see above);
    `signals` holds the other signals' full breakdown (external signals
    with weight and contribution; rows written before the columns existed hold every signal
    there). health.representation.stored_signals merges both, so the API explains exactly the
    stored score. Customer.health_* mirrors score/status."""

    customer = models.OneToOneField(
        Customer, on_delete=models.DO_NOTHING, primary_key=True, related_name="+", db_constraint=False
    )
    # No single-column FK indexes here or on HealthSnapshot: (workspace, score, customer) and the
    # primary key serve those lookups, and every rollup writes each index of every row.
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+", db_index=False)
    score = models.FloatField(null=True)
    status = models.CharField(max_length=10, choices=HealthStatus.choices, default=HealthStatus.UNKNOWN)
    confidence = models.FloatField(default=0.0)
    model_version = models.PositiveIntegerField()
    signals = models.JSONField(default=list)
    computed_at = models.DateTimeField()
    # What the last health.score_changed webhook said, so small drifts do not notify.
    notified_score = models.FloatField(null=True)
    notified_status = models.CharField(max_length=10, null=True)
    signal_values = ArrayField(models.FloatField(null=True), null=True)
    signal_scores = ArrayField(models.FloatField(null=True), null=True)
    signal_contributions = ArrayField(models.FloatField(null=True), null=True)

    class Meta:
        # Serves the at-risk list: filter by score and order by (score, customer) in one range scan.
        indexes = [
            models.Index(fields=["workspace", "score", "customer"], name="customer_health_ws_score_idx")
        ]


class HealthSnapshot(models.Model):
    """One customer's score for one UTC day (the state at the end of that day)."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+", db_index=False)
    customer = models.ForeignKey(
        Customer, on_delete=models.DO_NOTHING, related_name="+", db_constraint=False, db_index=False
    )
    date = models.DateField()
    score = models.FloatField(null=True)
    status = models.CharField(max_length=10, choices=HealthStatus.choices)
    confidence = models.FloatField(default=0.0)
    model_version = models.PositiveIntegerField()
    computed_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["customer", "date"], name="health_snapshot_customer_date_unique"),
        ]
        indexes = [models.Index(fields=["workspace", "date"], name="health_snapshot_ws_date_idx")]


class DirtyCustomer(models.Model):
    """A "needs rescoring" mark, used only when Redis is unavailable (Redis sets otherwise)."""

    customer_id = models.CharField(max_length=32, primary_key=True)
    workspace_id = models.CharField(max_length=32, db_index=True)
    marked_at = models.DateTimeField(default=timezone.now)


class JobStatus(models.TextChoices):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


ACTIVE_JOB_STATUSES = (JobStatus.QUEUED, JobStatus.RUNNING)


class _HealthJob(models.Model):
    """A backtest or a model fit (health.backtests): the inputs as given (`params`), and the
    result fields once it succeeded, or the `error` ({"code", "message"}) once it failed."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+", db_index=False)
    status = models.CharField(max_length=10, choices=JobStatus.choices, default=JobStatus.QUEUED)
    params = models.JSONField(default=dict)
    result = models.JSONField(null=True)
    error = models.JSONField(null=True)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True)
    finished_at = models.DateTimeField(null=True)

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return f"{self.pk} ({self.status})"


class Backtest(_HealthJob):
    id = models.CharField(primary_key=True, max_length=32, default=id_factory("bt"), editable=False)

    class Meta:
        ordering = ["-id"]
        constraints = [
            # One queued-or-running backtest per workspace: the database enforces it.
            models.UniqueConstraint(
                fields=["workspace"],
                condition=models.Q(status__in=["queued", "running"]),
                name="backtest_one_active_per_workspace",
            )
        ]
        indexes = [models.Index(fields=["workspace", "-id"], name="backtest_ws_id_idx")]


class ModelFit(_HealthJob):
    id = models.CharField(primary_key=True, max_length=32, default=id_factory("fit"), editable=False)
    # Set when the fit became a model version (POST .../apply); the newest applied fit's churn
    # curve gives every health object its churn_probability.
    applied_at = models.DateTimeField(null=True)
    applied_version = models.PositiveIntegerField(null=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["workspace"],
                condition=models.Q(status__in=["queued", "running"]),
                name="modelfit_one_active_per_workspace",
            )
        ]
        indexes = [
            models.Index(fields=["workspace", "-id"], name="modelfit_ws_id_idx"),
            models.Index(
                fields=["workspace", "-applied_at"],
                name="modelfit_ws_applied_idx",
                condition=models.Q(applied_at__isnull=False),
            ),
        ]
