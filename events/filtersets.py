from __future__ import annotations

import django_filters
from django import forms

from customers.filtersets import DateOrDateTimeFilter
from customers.models import Customer
from events.models import Event
from events.validation import TYPE_RE
from perly.ids import is_valid_id


class CustomerIdField(forms.CharField):
    def to_python(self, value):
        value = super().to_python(value)
        if value and not is_valid_id(value, "cus"):
            raise forms.ValidationError("customer must be a customer id (cus_...).")
        return value


class TypesField(forms.Field):
    """The list of `type=` values (the view allows repeating the parameter)."""

    widget = forms.SelectMultiple

    def to_python(self, value):
        values = [value] if isinstance(value, str) else list(value or [])
        for item in values:
            if not TYPE_RE.fullmatch(item):
                raise forms.ValidationError("type must be 1 to 100 characters of letters, digits and _ . : -")
        return values


class CustomerFilter(django_filters.Filter):
    field_class = CustomerIdField

    def filter(self, qs, value):
        if not value:
            return qs
        # The view already hides a deleted customer's events; answering from its row (one primary
        # key lookup) spares scanning them all while the purge has not reached them.
        if Customer.all_objects.filter(pk=value, deleted_at__isnull=False).exists():
            return qs.none()
        return super().filter(qs, value)


class TypesFilter(django_filters.Filter):
    field_class = TypesField

    def filter(self, qs, value):
        if not value:
            return qs
        return qs.filter(type__in=value)


class EventFilterSet(django_filters.FilterSet):
    # Another workspace's customer matches nothing here (the queryset is already scoped), so
    # it answers exactly like a customer that does not exist: an empty list.
    customer = CustomerFilter(field_name="customer_id")
    type = TypesFilter()
    timestamp_after = DateOrDateTimeFilter(field_name="timestamp", lookup_expr="gte")
    timestamp_before = DateOrDateTimeFilter(field_name="timestamp", lookup_expr="lt")

    class Meta:
        model = Event
        fields: list[str] = []
