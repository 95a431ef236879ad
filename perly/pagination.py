"""Cursor pagination (`limit`, `starting_after`, `ending_before`), never offsets or counts.

Object ids start with their creation time (perly.ids), so newest-first is `ORDER BY id DESC`
and a page is an index range scan whatever its depth. Lists ordered by another column (events
by `timestamp`) name it in `cursor_ordering`; the cursor object's value is then looked up once.
"""

from __future__ import annotations

from collections.abc import Callable

from django.db.models import Q, QuerySet
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import BasePagination
from rest_framework.response import Response

from perly import lookup
from perly.ids import is_valid_id

PAGINATION_PARAMS = ("limit", "starting_after", "ending_before")
DEFAULT_LIMIT = 10
MAX_LIMIT = 100


def _invalid(param: str, message: str) -> ValidationError:
    from rest_framework.exceptions import ErrorDetail

    return ValidationError({param: [ErrorDetail(message, code="parameter_invalid")]})


def parse_limit(raw: str | None) -> int:
    if raw is None:
        return DEFAULT_LIMIT
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
        raise _invalid("limit", f"limit must be an integer from 1 to {MAX_LIMIT}.")
    return int(raw)


class CursorPagination(BasePagination):
    def paginate_queryset(self, queryset, request, view=None):
        after, before, ordering = self._parse(request, view)
        cursor = after if after is not None else before
        param = "starting_after" if after is not None else "ending_before"
        if cursor is None:
            rows = list(queryset.order_by(*[f"-{f}" for f in ordering])[: self.limit + 1])
            self.has_more = len(rows) > self.limit
            return rows[: self.limit]

        values = self._cursor_values(queryset, ordering, cursor, param, view)
        forward = after is not None
        condition = _keyset_condition(ordering, values, older=forward)
        if forward:
            rows = list(queryset.filter(condition).order_by(*[f"-{f}" for f in ordering])[: self.limit + 1])
            self.has_more = len(rows) > self.limit
            return rows[: self.limit]
        rows = list(queryset.filter(condition).order_by(*ordering)[: self.limit + 1])
        self.has_more = len(rows) > self.limit
        return list(reversed(rows[: self.limit]))

    def paginate_compiled(self, request, view, rows: Callable[[str], QuerySet], workspace_id: str) -> list:
        """`paginate_queryset` for an unfiltered, id-ordered list: `rows(workspace_id)` is the
        workspace's `values_list` queryset. Its SQL varies only by the workspace, the cursor, the
        page size and the direction, so it is compiled once per view, size and direction
        (perly.lookup.fetch_rows) instead of on every request."""
        after, before, ordering = self._parse(request, view)
        if ordering != ("id",):
            raise ValueError("paginate_compiled serves id-ordered lists only")
        cursor = after if after is not None else before
        direction = "first" if cursor is None else ("after" if after is not None else "before")
        limit = self.limit

        def build() -> QuerySet:
            queryset = rows(lookup.WORKSPACE)
            if direction == "first":
                return queryset.order_by("-id")[: limit + 1]
            if direction == "after":
                return queryset.filter(id__lt=lookup.CURSOR).order_by("-id")[: limit + 1]
            return queryset.filter(id__gt=lookup.CURSOR).order_by("id")[: limit + 1]

        page = lookup.fetch_rows(
            (type(view), limit, direction), build, {lookup.WORKSPACE: workspace_id, lookup.CURSOR: cursor}
        )
        self.has_more = len(page) > limit
        page = page[:limit]
        return page[::-1] if direction == "before" else page

    def _parse(self, request, view) -> tuple[str | None, str | None, tuple[str, ...]]:
        params = request.query_params
        self.limit = parse_limit(params.get("limit"))
        after, before = params.get("starting_after"), params.get("ending_before")
        if after is not None and before is not None:
            raise ValidationError(
                {"starting_after": ["Pass only one of starting_after and ending_before."]},
                code="parameters_exclusive",
            )
        prefix = getattr(view, "id_prefix", None)
        cursor = after if after is not None else before
        param = "starting_after" if after is not None else "ending_before"
        self.request = request
        ordering = tuple(getattr(view, "cursor_ordering", ("id",)))
        if cursor is not None and prefix and not is_valid_id(cursor, prefix):
            raise _invalid(param, f"{param} must be a {prefix}_ id from a previous page.")
        return after, before, ordering

    def _cursor_values(self, queryset, ordering, cursor, param, view) -> tuple:
        if ordering == ("id",):
            return (cursor,)
        row = queryset.filter(id=cursor).values_list(*ordering).first()
        if row is None:
            resource = getattr(view, "resource_name", "object")
            raise _invalid(param, f"{param}: no such {resource}: '{cursor}'.")
        return tuple(row)

    def get_paginated_response(self, data):
        return Response({"object": "list", "url": self.request.path, "has_more": self.has_more, "data": data})

    def get_paginated_response_schema(self, schema):
        return {
            "type": "object",
            "required": ["object", "url", "has_more", "data"],
            "properties": {
                "object": {"type": "string", "enum": ["list"]},
                "url": {"type": "string"},
                "has_more": {"type": "boolean"},
                "data": schema,
            },
        }

    def get_schema_operation_parameters(self, view):
        return [
            {
                "name": "limit",
                "in": "query",
                "required": False,
                "description": f"Page size, 1 to {MAX_LIMIT} (default {DEFAULT_LIMIT}).",
                "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
            },
            {
                "name": "starting_after",
                "in": "query",
                "required": False,
                "description": "An object id from the previous page: return the objects after it.",
                "schema": {"type": "string"},
            },
            {
                "name": "ending_before",
                "in": "query",
                "required": False,
                "description": "An object id: return the objects before it (the previous page).",
                "schema": {"type": "string"},
            },
        ]


def _keyset_condition(ordering: tuple[str, ...], values: tuple, older: bool) -> Q:
    """(a, b) < (va, vb) as a Q, or > when not `older`."""
    op = "lt" if older else "gt"
    condition = Q()
    for index in range(len(ordering) - 1, -1, -1):
        field, value = ordering[index], values[index]
        step = Q(**{f"{field}__{op}": value})
        if index < len(ordering) - 1:
            step |= Q(**{field: value}) & condition
        condition = step
    return condition
