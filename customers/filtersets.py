from __future__ import annotations

from datetime import datetime, time

import django_filters
from django import forms
from django.db.models import Q
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from customers.models import Customer, HealthStatus, LifecycleStage


class DateOrDateTimeField(forms.Field):
    """Accepts `YYYY-MM-DD` (midnight UTC) or an ISO 8601 datetime."""

    def to_python(self, value):
        if value in (None, ""):
            return None
        parsed = parse_datetime(value)
        if parsed is None:
            day = parse_date(value) if len(value) == 10 else None
            if day is None:
                raise forms.ValidationError("Enter a date (YYYY-MM-DD) or an ISO 8601 datetime.")
            parsed = datetime.combine(day, time.min)
        if timezone.is_naive(parsed):
            parsed = timezone.make_aware(parsed, timezone.utc)
        return parsed


class DateOrDateTimeFilter(django_filters.Filter):
    field_class = DateOrDateTimeField


class ScoreFilter(django_filters.NumberFilter):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("min_value", 0)
        kwargs.setdefault("max_value", 100)
        super().__init__(*args, **kwargs)


class CustomerFilterSet(django_filters.FilterSet):
    email = django_filters.CharFilter(field_name="email", lookup_expr="iexact")
    external_id = django_filters.CharFilter(field_name="external_id")
    domain = django_filters.CharFilter(field_name="domain", lookup_expr="iexact")
    plan = django_filters.CharFilter(field_name="plan")
    owner = django_filters.CharFilter(field_name="owner", lookup_expr="iexact")
    lifecycle_stage = django_filters.ChoiceFilter(choices=LifecycleStage.choices)
    health_status = django_filters.ChoiceFilter(choices=HealthStatus.choices, method="filter_health_status")
    health_score_min = ScoreFilter(field_name="health_score", lookup_expr="gte")
    health_score_max = ScoreFilter(field_name="health_score", lookup_expr="lte")
    created_after = DateOrDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = DateOrDateTimeFilter(field_name="created_at", lookup_expr="lt")
    q = django_filters.CharFilter(method="search", max_length=200)

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
