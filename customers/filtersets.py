from __future__ import annotations

import django_filters
from django import forms
from django.db.models import Q

from customers.external_ids import normalize_external_id
from customers.models import Customer, HealthStatus, LifecycleStage
from perly.dates import RANGE_TEXT, DateParamError, parse_query_datetime

_DATE_HELP = f"YYYY-MM-DD (midnight UTC) or an ISO 8601 datetime, {RANGE_TEXT}."


class DateOrDateTimeField(forms.Field):
    """Accepts `YYYY-MM-DD` (midnight UTC) or an ISO 8601 datetime (naive means UTC), within
    perly.dates' range (the one parser for every date query parameter)."""

    default_error_messages = {
        "invalid": "Enter a date (YYYY-MM-DD) or an ISO 8601 datetime.",
        "range": f"Enter a date or datetime {RANGE_TEXT} (UTC).",
    }

    def to_python(self, value):
        if value in (None, ""):
            return None
        try:
            return parse_query_datetime(value)
        except DateParamError as exc:
            code = "range" if exc.reason == "range" else "invalid"
            raise forms.ValidationError(self.error_messages[code], code=code) from None


class DateOrDateTimeFilter(django_filters.Filter):
    field_class = DateOrDateTimeField


class ExternalIdField(forms.CharField):
    def to_python(self, value):
        return normalize_external_id(super().to_python(value))


class ExternalIdFilter(django_filters.CharFilter):
    """Exact, on the normalized form (customers.external_ids), as the ids are stored."""

    field_class = ExternalIdField


class EmailFilter(django_filters.CharFilter):
    field_class = forms.EmailField


class ScoreFilter(django_filters.NumberFilter):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("min_value", 0)
        kwargs.setdefault("max_value", 100)
        super().__init__(*args, **kwargs)


class CustomerFilterSet(django_filters.FilterSet):
    email = EmailFilter(field_name="email", lookup_expr="iexact", help_text="Exact email (case-insensitive).")
    external_id = ExternalIdFilter(
        field_name="external_id",
        max_length=255,
        help_text="Your own id for the customer (exact, after Unicode NFC and trimming).",
    )
    domain = django_filters.CharFilter(
        field_name="domain", lookup_expr="iexact", max_length=253, help_text="Exact domain."
    )
    plan = django_filters.CharFilter(field_name="plan", max_length=100, help_text="Exact plan name.")
    owner = EmailFilter(
        field_name="owner", lookup_expr="iexact", help_text="The account owner's email (case-insensitive)."
    )
    lifecycle_stage = django_filters.ChoiceFilter(
        choices=LifecycleStage.choices, help_text="Lifecycle stage."
    )
    health_status = django_filters.ChoiceFilter(
        choices=HealthStatus.choices,
        method="filter_health_status",
        help_text="Current health status; `unknown` includes customers not scored yet.",
    )
    health_score_min = ScoreFilter(
        field_name="health_score", lookup_expr="gte", help_text="Health score at least this (0-100)."
    )
    health_score_max = ScoreFilter(
        field_name="health_score", lookup_expr="lte", help_text="Health score at most this (0-100)."
    )
    created_after = DateOrDateTimeFilter(
        field_name="created_at", lookup_expr="gte", help_text=f"Created at or after (inclusive): {_DATE_HELP}"
    )
    created_before = DateOrDateTimeFilter(
        field_name="created_at", lookup_expr="lt", help_text=f"Created before (exclusive): {_DATE_HELP}"
    )
    churned_after = DateOrDateTimeFilter(
        field_name="churned_at", lookup_expr="gte", help_text=f"Churned at or after (inclusive): {_DATE_HELP}"
    )
    churned_before = DateOrDateTimeFilter(
        field_name="churned_at", lookup_expr="lt", help_text=f"Churned before (exclusive): {_DATE_HELP}"
    )
    q = django_filters.CharFilter(
        method="search",
        max_length=200,
        help_text="Case-insensitive search in name, email, domain and external_id.",
    )

    class Meta:
        model = Customer
        fields: list[str] = []

    def filter_health_status(self, queryset, name, value):
        if value == HealthStatus.UNKNOWN:
            return queryset.filter(Q(health_status__isnull=True) | Q(health_status=HealthStatus.UNKNOWN))
        return queryset.filter(health_status=value)

    def search(self, queryset, name, value):
        return queryset.filter(
            Q(name__icontains=value)
            | Q(email__icontains=value)
            | Q(domain__icontains=value)
            | Q(external_id__icontains=value)
        )
