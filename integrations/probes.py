"""Reads of "the rows whose key is one of these", as one index probe per key.

`column IN (...)` leaves the plan to statistics, and during a sync they are wrong: a table the
sync itself fills, or a new workspace's first sync on a table analyzed before its rows existed,
looks small, so the planner picks an index on the workspace or integration alone and filters
all of its rows, once per page (quadratic in the sync's size). A LATERAL subquery kept apart by
OFFSET 0 is planned per key, as equalities on an index that leads with the scope and key
columns, whatever the statistics say.

Use it where the (scope, key) index is the only one matching both columns better than the rest:
on customers, without statistics, a probe of (workspace, domain) was planned on
(workspace, health_status) with the key as a filter, so matching keeps its IN filters.

Only identifiers written in this app's code are formatted into the SQL; values are parameters.
"""

from __future__ import annotations

import json

from django.db import connection


def probe(
    *,
    table: str,
    columns: tuple[str, ...],
    scope: tuple[str, str],
    key: str,
    values: list[str],
    where: str = "",
    where_params: tuple = (),
    order_by: str | None = None,
    json_column: str | None = None,
) -> list[tuple]:
    """Rows of `table` (the `columns`) with `scope[0] = scope[1]` and `key` in `values`, plus the
    `where` condition. `json_column` (one of `columns`) is decoded to Python if the driver hands
    it over as text."""
    if not values:
        return []
    selected = ", ".join(columns)
    condition = f" AND {where}" if where else ""
    sql = (
        f"SELECT {selected} FROM unnest(%s::varchar[]) AS k(value) CROSS JOIN LATERAL "  # noqa: S608
        f"(SELECT {selected} FROM {table} WHERE {scope[0]} = %s AND {key} = k.value{condition} OFFSET 0) AS r"
        + (f" ORDER BY {order_by}" if order_by else "")
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [list(dict.fromkeys(values)), scope[1], *where_params])  # IN's set semantics
        rows = cursor.fetchall()
    if json_column is None:
        return rows
    at = columns.index(json_column)
    return [
        row if not isinstance(row[at], str) else (*row[:at], json.loads(row[at]), *row[at + 1 :])
        for row in rows
    ]
