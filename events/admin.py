"""Events in the admin: read-only, filterable, and never a COUNT(*) over the whole table."""

from __future__ import annotations

import json

from django.contrib import admin
from django.core.paginator import Paginator
from django.utils.functional import cached_property
from django.utils.html import format_html

from customers.models import Customer
from events.models import Event

COUNT_CAP = 10_000


class CappedCountPaginator(Paginator):
    """Counts at most COUNT_CAP + 1 rows (a bounded index scan): exact for small results, and
    "more than 10,000" for big ones instead of a full scan of hundreds of millions of rows."""

    @cached_property
    def count(self) -> int:
        return self.object_list.order_by().values("pk")[: COUNT_CAP + 1].count()


class TypeFilter(admin.SimpleListFilter):
    """A text box, not a list of choices: listing the distinct types would scan the table."""

    title = "type"
    parameter_name = "type"
    template = "admin/events/input_filter.html"

    def lookups(self, request, model_admin):
        return ()

    def has_output(self) -> bool:
        return True

    def choices(self, changelist):
        self.clear_url = changelist.get_query_string(remove=[self.parameter_name])
        self.preserved_params = [
            (name, value)
            for name, value in changelist.get_filters_params().items()
            if name != self.parameter_name
        ]
        return [{"selected": False, "query_string": "", "display": ""}]

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(type=self.value())
        return queryset


@admin.register(Event)
class EventAdmin(admin.ModelAdmin):
    list_display = ("id", "type", "timestamp", "customer_id", "workspace", "idempotency_key", "received_at")
    list_filter = ("workspace", TypeFilter, ("timestamp", admin.DateFieldListFilter))
    list_select_related = ("workspace",)
    search_fields = ("=id", "=customer__id")
    ordering = ("-timestamp", "-id")
    show_full_result_count = False
    paginator = CappedCountPaginator
    fields = (
        "id",
        "workspace",
        "customer",
        "type",
        "timestamp",
        "properties_pretty",
        "idempotency_key",
        "received_at",
    )
    readonly_fields = fields

    def get_queryset(self, request):
        # A deleted customer's events are gone from the admin too, before the purge removes them.
        deleted = Customer.all_objects.filter(deleted_at__isnull=False).values("id")
        return super().get_queryset(request).exclude(customer_id__in=deleted)

    @admin.display(description="properties")
    def properties_pretty(self, event: Event):
        return format_html("<pre>{}</pre>", json.dumps(event.properties or {}, indent=2, sort_keys=True))

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
