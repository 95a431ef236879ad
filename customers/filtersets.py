from __future__ import annotations

from datetime import UTC, datetime, time

import django_filters
from django import forms
from django.db.models import Q
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from customers.models import Customer, HealthStatus, LifecycleStage

_DATE_HELP = "YYYY-MM-DD (midnight UTC) or an ISO 8601 datetime."


class DateOrDateTimeField(forms.Field):
    """Accepts `YYYY-MM-DD` (midnight UTC) or an ISO 8601 datetime (naive means UTC)."""

    default_error_messages = {"invalid": "Enter a date (YYYY-MM-DD) or an ISO 8601 datetime."}

    def to_python(self, value):
        if value in (None, ""):
            return None
        try:
            # parse_* return None for a wrong shape and raise ValueError for an impossible date.
            parsed = parse_datetime(value)
            if parsed is None:
                day = parse_date(value) if len(value) == 10 else None
                if day is None:
                    raise ValueError(value)
                parsed = datetime.combine(day, time.min)
        except ValueError:
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid") from None
        if timezone.is_naive(parsed):
            return parsed.replace(tzinfo=UTC)
        try:
            # In UTC before it reaches the database: Python allows offsets up to 24 h, PostgreSQL
            # refuses those beyond 15:59 (a 500 otherwise).
            return parsed.astimezone(UTC)
        except OverflowError:  # 9999-12-31T23:00:00-05:00 is past datetime.max in UTC
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid") from None


class DateOrDateTimeFilter(django_filters.Filter):
    field_class = DateOrDateTimeField


class EmailFilter(django_filters.CharFilter):
    field_class = forms.EmailField


class ScoreFilter(django_filters.NumberFilter):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("min_value", 0)
        kwargs.setdefault("max_value", 100)
        super().__init__(*args, **kwargs)


class CustomerFilterSet(django_filters.FilterSet):
    email = EmailFilter(field_name="email", lookup_expr="iexact", help_text="Exact email (case-insensitive).")
    external_id = django_filters.CharFilter(
        field_name="external_id", max_length=255, help_text="Your own id for the customer (exact)."
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
