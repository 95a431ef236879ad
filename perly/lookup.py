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
class _Plan:
    model: type[Model]
    db: str
    sql: str
    params: tuple
    attnames: list[str]
    converters: dict


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
    params = [workspace_id if value == _WORKSPACE else object_id for value in plan.params]
    connection = connections[plan.db]
    with connection.cursor() as cursor:
        cursor.execute(plan.sql, params)
        row = cursor.fetchone()
    if row is None:
        return None
    if plan.converters:  # what the ORM applies to each value (JSON decoding, for one)
        row = list(row)
        for position, (functions, expression) in plan.converters.items():
            for function in functions:
                row[position] = function(row[position], expression, connection)
    return plan.model.from_db(plan.db, plan.attnames, row)
