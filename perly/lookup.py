"""Fetching one object by id without rebuilding its SQL on every request.

Compiling an ORM query costs far more CPU than running it (a single-row retrieve spends most of
its Python time in the query compiler). A retrieve's SQL depends only on the viewset's class, so
it is compiled once per class, with marker values where the workspace id and the object id go,
and later requests substitute the real values. The SQL is still produced by the viewset's own
scoped `get_queryset` path, so the workspace filter cannot be lost. Anything that would make the
SQL vary between requests (a `scope_queryset` override, any parameter other than the two
markers, select_related, annotations) keeps the ORM path.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.db import connections
from django.db.models import Model, QuerySet
from django.db.models.expressions import Col

_WORKSPACE = "\x00workspace-marker"
_OBJECT = "\x00object-marker"
_NOT_CACHEABLE = object()
_plans: dict[type, Any] = {}


@dataclass(frozen=True)
class _Sql:
    """Compiled SQL whose parameters are all markers, and the ORM's converters for its columns."""

    db: str
    sql: str
    params: tuple
    converters: dict

    def rows(self, values: dict[str, str], *, first: bool = False) -> list[tuple]:
        """Run with `values` in place of the markers; the rows converted as the ORM would
        (JSON decoding, for one). `first`: only the first row is fetched."""
        connection = connections[self.db]
        with connection.cursor() as cursor:
            cursor.execute(self.sql, [values[marker] for marker in self.params])
            rows = cursor.fetchmany(1) if first else cursor.fetchall()
        if not self.converters:
            return rows
        converters = self.converters.items()
        converted = []
        for row in rows:
            row = list(row)
            for position, (functions, expression) in converters:
                for function in functions:
                    row[position] = function(row[position], expression, connection)
            converted.append(tuple(row))
        return converted


@dataclass(frozen=True)
class _Plan(_Sql):
    model: type[Model]
    attnames: list[str]


def _compile(queryset: QuerySet) -> _Plan | object:
    compiler = queryset.query.get_compiler(queryset.db)
    sql, params = compiler.as_sql()
    simple = (
        sorted(params) == sorted([_WORKSPACE, _OBJECT])
        and not compiler.annotation_col_map
        and not (compiler.klass_info or {}).get("related_klass_infos")
        and all(isinstance(col, Col) for col, _, _ in compiler.select)
    )
    if not simple:
        return _NOT_CACHEABLE
    columns = [col for col, _, _ in compiler.select]
    return _Plan(
        model=queryset.model,
        db=queryset.db,
        sql=sql,
        params=tuple(params),
        attnames=[col.target.attname for col in columns],
        converters=compiler.get_converters(columns),
    )


def fetch_one(view_class: type, scoped: Any, workspace_id: str, object_id: str) -> Model | None:
    """The object with this id in `scoped(workspace_id)`, or None.

    `scoped(workspace_id)` must return the queryset the view would use; it is called with marker
    values once per class (and on every call when the SQL cannot be reused)."""
    plan = _plans.get(view_class)
    if plan is None:
        try:
            plan = _compile(scoped(_WORKSPACE).filter(pk=_OBJECT)[:1])
        except (TypeError, ValueError, ValidationError):  # a non-string pk cannot hold the marker
            plan = _NOT_CACHEABLE
        _plans[view_class] = plan
    if plan is _NOT_CACHEABLE:
        return next(iter(scoped(workspace_id).filter(pk=object_id)[:1]), None)
    found = plan.rows({_WORKSPACE: workspace_id, _OBJECT: object_id}, first=True)
    return plan.model.from_db(plan.db, plan.attnames, found[0]) if found else None


# --- Pages of rows ------------------------------------------------------------------------------

WORKSPACE = _WORKSPACE
CURSOR = "\x00cursor-marker"
_MARKERS = frozenset({_WORKSPACE, CURSOR})
_row_plans: dict[tuple, Any] = {}


def _compile_rows(queryset: QuerySet) -> _Sql | object:
    compiler = queryset.query.get_compiler(queryset.db)
    sql, params = compiler.as_sql()
    names = [*queryset.query.extra_select, *queryset.query.values_select, *queryset.query.annotation_select]
    if (
        not params
        or not set(params) <= _MARKERS
        or queryset._fields is None
        or list(queryset._fields) != names[: len(queryset._fields)]
        or len(names) != len(queryset._fields)
    ):
        return _NOT_CACHEABLE
    return _Sql(
        db=queryset.db,
        sql=sql,
        params=tuple(params),
        converters=compiler.get_converters([col for col, _, _ in compiler.select]),
    )


def fetch_rows(key: tuple, build: Callable[[], QuerySet], values: dict[str, str]) -> list[tuple]:
    """The rows of `build()`, a `values_list` queryset whose only parameters are the markers
    WORKSPACE and CURSOR, with `values` substituted for them. The SQL is compiled once per `key`,
    which must identify everything else the SQL depends on (the view, the page size, the cursor
    direction). A queryset with anything else in its parameters (a filter value) is a
    programming error: ValueError; filtered lists use the ORM."""
    plan = _row_plans.get(key)
    if plan is None:
        plan = _row_plans[key] = _compile_rows(build())
    if plan is _NOT_CACHEABLE:
        raise ValueError(f"fetch_rows: the query for {key!r} cannot be reused; use the ORM")
    return plan.rows(values)
