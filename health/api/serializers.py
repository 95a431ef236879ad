"""Input validation for the health model and the response shapes documented in OpenAPI."""

from __future__ import annotations

import math

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from customers.models import HealthStatus
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
        "additionalProperties": False,
    }
)
class WeightsField(serializers.Field):
    """An object of signal key -> non-negative number."""

    def to_internal_value(self, data):
        if not isinstance(data, dict):
            raise serializers.ValidationError("weights must be an object of signal key -> number.")
        errors = {}
        for key, weight in data.items():
            if key not in CATALOG:
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


class HealthModelSerializer(serializers.Serializer):
    object = serializers.CharField(default="health_model")
    version = serializers.IntegerField()
    weights = serializers.DictField(child=serializers.FloatField())
    category_weights = serializers.DictField(child=serializers.FloatField())
    thresholds = ThresholdsSerializer()
    created_at = serializers.DateTimeField()


def model_representation(model: HealthModel) -> dict:
    category_weights = dict.fromkeys(CATEGORIES, 0.0)
    for key, weight in model.weights.items():
        if key in CATALOG:
            category_weights[CATALOG[key].category] += weight
    return {
        "object": "health_model",
        "version": model.version,
        "weights": {key: model.weights.get(key, 0.0) for key in CATALOG},
        "category_weights": {key: round(value, 2) for key, value in category_weights.items()},
        "thresholds": {"healthy": model.healthy_threshold, "at_risk": model.at_risk_threshold},
        "created_at": iso(model.created_at),
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
    computed_at = serializers.DateTimeField(allow_null=True)
    signals = WeightedSignalSerializer(many=True)


class HistoryPointSerializer(serializers.Serializer):
    date = serializers.DateField()
    score = serializers.FloatField(allow_null=True)
    status = serializers.ChoiceField(choices=HealthStatus.choices)
    model_version = serializers.IntegerField()


class HistorySerializer(serializers.Serializer):
    object = serializers.CharField(default="list")
    granularity = serializers.ChoiceField(choices=["daily", "weekly"])
    data = HistoryPointSerializer(many=True)


class ByStatusSerializer(serializers.Serializer):
    healthy = serializers.IntegerField()
    neutral = serializers.IntegerField()
    at_risk = serializers.IntegerField()
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
