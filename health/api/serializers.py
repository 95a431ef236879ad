"""Input validation for the health model and the response shapes documented in OpenAPI."""

from __future__ import annotations

import math

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from customers.models import HealthStatus
from health.churn_curve import applied_curve
from health.models import HealthModel
from health.services import MAX_WEIGHT
from health.signals import CATALOG, CATEGORIES
from perly.api import StrictSerializerMixin
from perly.timestamps import iso


@extend_schema_field({"type": "number", "minimum": 0, "maximum": 100})
class NumberField(serializers.Field):
    """A JSON number (not a string, not a boolean), finite."""

    default_error_messages = {"invalid": "Must be a number."}

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, (int, float)) or not math.isfinite(data):
            self.fail("invalid")
        return float(data)

    def to_representation(self, value):
        return value


class ThresholdsSerializer(StrictSerializerMixin, serializers.Serializer):
    healthy = NumberField(required=False, help_text="Scores at or above this are healthy (default 70).")
    at_risk = NumberField(required=False, help_text="Scores below this are at_risk (default 40).")


@extend_schema_field(
    {
        "type": "object",
        "properties": {key: {"type": "number", "minimum": 0, "maximum": MAX_WEIGHT} for key in CATALOG},
        # The workspace's own metrics (custom.<name>) take weights too.
        "additionalProperties": {"type": "number", "minimum": 0, "maximum": MAX_WEIGHT},
    }
)
class WeightsField(serializers.Field):
    """An object of signal key -> non-negative number."""

    def to_internal_value(self, data):
        if not isinstance(data, dict):
            raise serializers.ValidationError("weights must be an object of signal key -> number.")
        errors = {}
        from health.metrics import KEY_RE

        for key, weight in data.items():
            if key not in CATALOG and not (isinstance(key, str) and KEY_RE.match(key)):
                errors[key] = [f"Unknown signal key: '{key}'."]
            elif (
                isinstance(weight, bool) or not isinstance(weight, (int, float)) or not math.isfinite(weight)
            ):
                errors[key] = ["Weights must be numbers."]
            elif not 0 <= weight <= MAX_WEIGHT:
                errors[key] = [f"Weights must be from 0 to {MAX_WEIGHT:,}."]
        if errors:
            raise serializers.ValidationError(errors)
        return {key: float(weight) for key, weight in data.items()}

    def to_representation(self, value):
        return value


class HealthModelInputSerializer(StrictSerializerMixin, serializers.Serializer):
    weights = WeightsField(
        required=False,
        help_text="Signal key -> weight (>= 0). Keys not named keep their current weight.",
    )
    thresholds = ThresholdsSerializer(required=False)


class ChurnProbabilityCurveSerializer(serializers.Serializer):
    fit = serializers.CharField(help_text="The applied model fit (fit_...).")
    horizon_days = serializers.IntegerField(help_text="The probability is of churn within this many days.")
    intercept = serializers.FloatField()
    slope = serializers.FloatField(help_text="Negative: a higher score, a lower probability.")


class HealthModelSerializer(serializers.Serializer):
    object = serializers.CharField(default="health_model")
    version = serializers.IntegerField()
    weights = serializers.DictField(child=serializers.FloatField())
    category_weights = serializers.DictField(child=serializers.FloatField())
    thresholds = ThresholdsSerializer()
    churn_probability = ChurnProbabilityCurveSerializer(
        allow_null=True,
        help_text="The applied fit behind every health object's churn_probability (null before a fit is applied).",
    )
    created_at = serializers.DateTimeField()


def _catalog_first(key: str) -> tuple:
    keys = list(CATALOG)
    return (0, keys.index(key), key) if key in CATALOG else (1, 0, key)


def model_representation(model: HealthModel) -> dict:
    category_weights = dict.fromkeys(CATEGORIES, 0.0)
    categories = {key: definition.category for key, definition in CATALOG.items()}
    categories.update({definition["key"]: definition["category"] for definition in model.metrics})
    for key, weight in model.weights.items():
        if key in categories:
            category_weights[categories[key]] += weight
    return {
        "object": "health_model",
        "version": model.version,
        "weights": {key: model.weights.get(key, 0.0) for key in sorted(categories, key=_catalog_first)},
        "category_weights": {key: round(value, 2) for key, value in category_weights.items()},
        "thresholds": {"healthy": model.healthy_threshold, "at_risk": model.at_risk_threshold},
        "churn_probability": _churn_curve(model.workspace_id),
        "created_at": iso(model.created_at),
    }


def _churn_curve(workspace_id: str) -> dict | None:
    applied = applied_curve(workspace_id)
    if applied is None:
        return None
    return {
        "fit": applied.fit_id,
        "horizon_days": applied.horizon_days,
        "intercept": applied.curve.intercept,
        "slope": applied.curve.slope,
    }


# --- Response shapes (OpenAPI only) ------------------------------------------------------------


class SignalSerializer(serializers.Serializer):
    object = serializers.CharField(default="signal")
    key = serializers.CharField()
    category = serializers.ChoiceField(choices=CATEGORIES)
    label = serializers.CharField()
    value = serializers.FloatField(allow_null=True)
    unit = serializers.CharField()
    score = serializers.FloatField(min_value=0, max_value=100)
    source = serializers.CharField(help_text="`events`, or the integration that wrote it.")
    computed_at = serializers.DateTimeField()


class WeightedSignalSerializer(SignalSerializer):
    weight = serializers.FloatField()
    contribution = serializers.FloatField(help_text="weight * score / sum of present weights.")


class SignalListSerializer(serializers.Serializer):
    object = serializers.CharField(default="list")
    data = SignalSerializer(many=True)


class HealthScoreSerializer(serializers.Serializer):
    object = serializers.CharField(default="health_score")
    customer = serializers.CharField()
    score = serializers.FloatField(allow_null=True)
    status = serializers.ChoiceField(choices=HealthStatus.choices)
    confidence = serializers.FloatField()
    model_version = serializers.IntegerField(allow_null=True)
    change_7d = serializers.FloatField(allow_null=True)
    change_30d = serializers.FloatField(allow_null=True)
    churn_probability = serializers.FloatField(
        allow_null=True,
        help_text="An estimate of the probability of churn within the applied fit's horizon (GET "
        "/v1/health/model: churn_probability), 3 decimals; null before a fit is applied or without a score.",
    )
    computed_at = serializers.DateTimeField(allow_null=True)
    signals = WeightedSignalSerializer(many=True)


class HistoryPointSerializer(serializers.Serializer):
    date = serializers.DateField()
    score = serializers.FloatField(allow_null=True)
    status = serializers.ChoiceField(choices=HealthStatus.choices)
    model_version = serializers.IntegerField()
    churn_probability = serializers.FloatField(
        allow_null=True,
        help_text="An estimate of the probability of churn within the applied fit's horizon (GET "
        "/v1/health/model: churn_probability), 3 decimals; null before a fit is applied or without a score.",
    )


class HistorySerializer(serializers.Serializer):
    object = serializers.CharField(default="list")
    granularity = serializers.ChoiceField(choices=["daily", "weekly"])
    data = HistoryPointSerializer(many=True)


class ByStatusSerializer(serializers.Serializer):
    healthy = serializers.IntegerField()
    neutral = serializers.IntegerField()
    at_risk = serializers.IntegerField()
    churned = serializers.IntegerField()
    unknown = serializers.IntegerField()


class BucketSerializer(serializers.Serializer):
    min = serializers.IntegerField()
    max = serializers.IntegerField()
    count = serializers.IntegerField()


class SummarySerializer(serializers.Serializer):
    object = serializers.CharField(default="health_summary")
    total_customers = serializers.IntegerField()
    average_score = serializers.FloatField(allow_null=True)
    median_score = serializers.FloatField(allow_null=True)
    by_status = ByStatusSerializer()
    distribution = BucketSerializer(many=True)
    computed_at = serializers.DateTimeField()


class AtRiskCustomerRefSerializer(serializers.Serializer):
    """name, external_id and email are present only for a key with customers:read."""

    id = serializers.CharField()
    name = serializers.CharField(required=False, help_text="Only with the customers:read scope.")
    external_id = serializers.CharField(
        allow_null=True, required=False, help_text="Only with the customers:read scope."
    )
    email = serializers.CharField(
        allow_null=True, required=False, help_text="Only with the customers:read scope."
    )


class AtRiskSerializer(serializers.Serializer):
    object = serializers.CharField(default="at_risk_customer")
    customer = AtRiskCustomerRefSerializer()
    score = serializers.FloatField()
    previous_score = serializers.FloatField(allow_null=True, help_text="The score 7 days earlier.")
    dropped_at = serializers.DateTimeField(allow_null=True)
    weakest_signals = WeightedSignalSerializer(many=True)


class AtRiskListSerializer(serializers.Serializer):
    object = serializers.CharField(default="list")
    url = serializers.CharField()
    has_more = serializers.BooleanField()
    data = AtRiskSerializer(many=True)


# --- Workspace-defined metrics -----------------------------------------------------------------


class MetricPointSerializer(serializers.Serializer):
    value = serializers.FloatField()
    score = serializers.FloatField(min_value=0, max_value=100)


def _metric_fields(*, with_key: bool) -> dict:
    from health import metrics

    fields = {
        "label": serializers.CharField(min_length=1, max_length=200),
        "category": serializers.ChoiceField(choices=CATEGORIES),
        "aggregate": serializers.ChoiceField(choices=metrics.AGGREGATES),
        "property": serializers.CharField(
            allow_null=True,
            required=False,
            min_length=1,
            max_length=200,
            help_text="sum: the numeric property.",
        ),
        "event_types": serializers.ListField(
            child=serializers.CharField(min_length=1, max_length=100),
            allow_null=True,
            required=False,
            min_length=1,
            max_length=metrics.MAX_EVENT_TYPES,
            help_text="Aggregates: the event types counted (distinct); null for every type.",
        ),
        "window_days": serializers.IntegerField(
            allow_null=True,
            required=False,
            min_value=1,
            max_value=metrics.MAX_WINDOW_DAYS,
            help_text="Aggregates (required): the window ending at the computation time.",
        ),
        "numerator": serializers.CharField(
            allow_null=True, required=False, max_length=67, help_text="ratio."
        ),
        "denominator": serializers.CharField(
            allow_null=True, required=False, max_length=67, help_text="ratio."
        ),
        "metric": serializers.CharField(
            allow_null=True, required=False, max_length=67, help_text="change: the metric compared."
        ),
        "higher_is_better": serializers.BooleanField(required=False, help_text="Default true."),
        "curve": serializers.ChoiceField(
            choices=metrics.CURVES, required=False, help_text="Default percentile."
        ),
        "points": MetricPointSerializer(
            many=True,
            allow_null=True,
            required=False,
            min_length=2,
            max_length=metrics.MAX_POINTS,
            help_text="curve points: increasing values, piecewise linear, clamped at the ends.",
        ),
    }
    if with_key:
        fields = {
            "key": serializers.RegexField(metrics.KEY_RE.pattern, max_length=67, help_text="custom.<name>."),
            **fields,
        }
    else:
        for name in ("label", "category", "aggregate"):
            fields[name].required = False
    return fields


MetricCreateSerializer = type(
    "MetricCreateSerializer", (StrictSerializerMixin, serializers.Serializer), _metric_fields(with_key=True)
)
MetricUpdateSerializer = type(
    "MetricUpdateSerializer", (StrictSerializerMixin, serializers.Serializer), _metric_fields(with_key=False)
)
MetricSerializer = type(
    "MetricSerializer",
    (serializers.Serializer,),
    {
        "id": serializers.CharField(),
        "object": serializers.CharField(default="metric"),
        **_metric_fields(with_key=True),
        "unit": serializers.CharField(),
        "created_at": serializers.DateTimeField(),
        "updated_at": serializers.DateTimeField(),
    },
)


class DeletedMetricSerializer(serializers.Serializer):
    id = serializers.CharField()
    object = serializers.CharField(default="metric")
    deleted = serializers.BooleanField()


def metric_representation(row) -> dict:
    from health import metrics
    from perly.timestamps import iso

    definition = row.definition
    return {
        "id": row.id,
        "object": "metric",
        **{name: definition.get(name) for name in metrics.FIELDS},
        "unit": metrics.UNITS[definition["aggregate"]],
        "created_at": iso(row.created_at),
        "updated_at": iso(row.updated_at),
    }


class CohortIntervalSerializer(serializers.Serializer):
    low = serializers.FloatField()
    high = serializers.FloatField()


class CohortGroupSerializer(serializers.Serializer):
    min = serializers.FloatField()
    max = serializers.FloatField()
    mean = serializers.FloatField()
    customers = serializers.IntegerField()
    churned = serializers.IntegerField()
    churn_rate = serializers.FloatField()
    interval = CohortIntervalSerializer(help_text="The churn rate's 95% Wilson interval.")


class MetricCohortsSerializer(serializers.Serializer):
    object = serializers.CharField(default="metric_cohorts")
    metric = serializers.CharField()
    as_of = serializers.DateField()
    horizon_days = serializers.IntegerField()
    observations = serializers.IntegerField()
    overall_churn_rate = serializers.FloatField(allow_null=True)
    groups = CohortGroupSerializer(many=True)
    computed_at = serializers.DateTimeField()
