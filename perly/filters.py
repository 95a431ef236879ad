"""The list filter backend: django-filter, skipped when the request uses none of the filters."""

from __future__ import annotations

from django_filters.rest_framework import DjangoFilterBackend


class FilterBackend(DjangoFilterBackend):
    """Building a FilterSet and its form deep-copies every filter and form field, a large share of
    an unfiltered list request; when no filter parameter is present there is nothing to validate
    (unknown parameters were already refused by WorkspaceScopedViewSet), so skip it.
    FilterSets therefore must not rely on filter defaults."""

    def filter_queryset(self, request, queryset, view):
        filterset_class = getattr(view, "filterset_class", None)
        if filterset_class is not None and request.query_params.keys().isdisjoint(
            filterset_class.base_filters
        ):
            return queryset
        return super().filter_queryset(request, queryset, view)
