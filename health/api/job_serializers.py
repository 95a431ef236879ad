"""OpenAPI shapes of backtests and model fits (health.backtests validates the input itself)."""

from __future__ import annotations

from rest_framework import serializers

from health import backtests
from health.api.serializers import HealthModelInputSerializer, NumberField, ThresholdsSerializer, WeightsField
from health.models import JobStatus
from perly.api import StrictSerializerMixin

_STATUSES = JobStatus.choices


class _DatesInput(StrictSerializerMixin, serializers.Serializer):
    observation_dates = serializers.ListField(
        child=serializers.DateField(),
        min_length=1,
        max_length=backtests.MAX_DATES,
        required=False,
        help_text=f"At most {backtests.MAX_DATES} distinct dates, each at least horizon_days in the past and "
        f"at most {backtests.MAX_DAYS_BACK} days back. Exclusive with from/to/every_days.",
    )
    # `from` is a Python keyword: declared below.
    to = serializers.DateField(required=False, help_text="The last date (with from).")
    every_days = serializers.IntegerField(
        min_value=1,
        max_value=backtests.MAX_EVERY_DAYS,
        required=False,
        help_text=f"Days between dates from `from` up to `to` (default {backtests.DEFAULT_EVERY_DAYS}).",
    )
    horizon_days = serializers.IntegerField(
        min_value=1,
        max_value=backtests.MAX_HORIZON_DAYS,
        required=False,
        help_text=f"Churn within this many days after a date is the label (default {backtests.DEFAULT_HORIZON_DAYS}).",
    )

    def get_fields(self):
        fields = super().get_fields()
        fields["from"] = serializers.DateField(required=False, help_text="The first date (with to).")
        return fields


class DraftMetricCurveSerializer(StrictSerializerMixin, serializers.Serializer):
    higher_is_better = serializers.BooleanField(required=False)
    curve = serializers.ChoiceField(choices=["percentile", "points"], required=False)
    points = serializers.ListField(child=serializers.DictField(child=NumberField()), required=False)


class DraftModelSerializer(HealthModelInputSerializer):
    metrics = serializers.DictField(
        child=DraftMetricCurveSerializer(),
        required=False,
        help_text="Metric key -> curve changes of the workspace's own metrics.",
    )


class BacktestInputSerializer(_DatesInput):
    model = DraftModelSerializer(
        required=False,
        help_text="A draft in the shape of PUT /v1/health/model (plus metric curves); absent: the current "
        "model. Nothing is written.",
    )


class ModelFitInputSerializer(_DatesInput):
    signals = serializers.ListField(
        child=serializers.CharField(),
        min_length=1,
        required=False,
        help_text="Signal keys to fit (default: every signal with data).",
    )


class ChurnRateSerializer(serializers.Serializer):
    customers = serializers.IntegerField()
    churned = serializers.IntegerField()
    churn_rate = serializers.FloatField(allow_null=True)


class CalibrationBandSerializer(ChurnRateSerializer):
    min = serializers.FloatField()
    max = serializers.FloatField()


class SignalEvaluationSerializer(serializers.Serializer):
    observations = serializers.IntegerField()
    auc = serializers.FloatField(allow_null=True)
    higher_is_better = serializers.BooleanField(allow_null=True)


class JobErrorSerializer(serializers.Serializer):
    """Why a job failed. Named so its schema is JobError: "_Error" and the envelope's "Error" would
    both become the model Error in a generated client."""

    code = serializers.CharField()
    message = serializers.CharField()


class _JobSerializer(serializers.Serializer):
    id = serializers.CharField()
    status = serializers.ChoiceField(choices=_STATUSES)
    error = JobErrorSerializer(allow_null=True)
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    observation_dates = serializers.ListField(child=serializers.DateField(), allow_null=True)
    to = serializers.DateField(allow_null=True)
    every_days = serializers.IntegerField(allow_null=True)
    horizon_days = serializers.IntegerField()
    observations = serializers.IntegerField(allow_null=True)
    churned = serializers.IntegerField(allow_null=True)

    def get_fields(self):
        fields = super().get_fields()
        fields["from"] = serializers.DateField(allow_null=True)
        return fields


class BacktestSerializer(_JobSerializer):
    object = serializers.CharField(default="backtest")
    model = serializers.DictField(allow_null=True)
    auc = serializers.FloatField(allow_null=True, help_text="P(a churner scores below a stayer), ties half.")
    churn_rate_by_status = serializers.DictField(child=ChurnRateSerializer(), allow_null=True)
    lift_bottom_decile = serializers.FloatField(allow_null=True)
    calibration = CalibrationBandSerializer(many=True, allow_null=True)
    signals = serializers.DictField(child=SignalEvaluationSerializer(), allow_null=True)


class ProposedModelSerializer(serializers.Serializer):
    weights = WeightsField()
    higher_is_better = serializers.DictField(child=serializers.BooleanField())
    thresholds = ThresholdsSerializer()


class ChurnCurveSerializer(serializers.Serializer):
    intercept = serializers.FloatField()
    slope = serializers.FloatField()
    horizon_days = serializers.IntegerField()


class ModelFitSerializer(_JobSerializer):
    object = serializers.CharField(default="model_fit")
    signals = serializers.ListField(child=serializers.CharField(), allow_null=True, help_text="As given.")
    fitted_signals = serializers.ListField(child=serializers.CharField(), allow_null=True)
    proposed_model = ProposedModelSerializer(allow_null=True)
    flipped = serializers.ListField(child=serializers.CharField(), allow_null=True)
    dropped = serializers.ListField(
        child=serializers.CharField(),
        allow_null=True,
        help_text="Built-in or integration signals found 'higher is worse': their direction cannot be "
        "reversed, so the fit was redone without them.",
    )
    coverage = serializers.DictField(child=serializers.FloatField(), allow_null=True)
    cv_auc = serializers.FloatField(allow_null=True)
    current_model_auc = serializers.FloatField(allow_null=True)
    churn_curve = ChurnCurveSerializer(allow_null=True)
    applied_at = serializers.DateTimeField(allow_null=True)
    applied_version = serializers.IntegerField(allow_null=True)
