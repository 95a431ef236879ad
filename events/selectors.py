"""Reads for the events API that are more than a filtered queryset."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from django.db import connection
from django.utils import timezone

from events.models import EventTypeDaily

# count_30d: events dated today (UTC) or on the 29 days before (events may be up to 24 h ahead
# of the clock; those count too).
WINDOW_DAYS = 30

# One row per type from the workspace's daily counters (types x retained days, never the events).
# Types whose events were all deleted (counters summing to zero) are gone.
_TYPES_SQL = """
WITH t AS (
    SELECT type,
           GREATEST(COALESCE(sum(count) FILTER (WHERE day >= %(since)s), 0), 0)::bigint AS count_30d,
           max(last_seen_at) AS last_seen_at
    FROM {daily}
    WHERE workspace_id = %(workspace)s
    GROUP BY type
    HAVING sum(count) > 0
)
SELECT type, count_30d, last_seen_at FROM t
{where}
ORDER BY {order}
LIMIT %(limit)s
"""
# Most frequent first, then by name: (count_30d DESC, type ASC) is the key a cursor continues from.
_FORWARD = (
    "count_30d DESC, type ASC",
    "WHERE count_30d < %(count)s OR (count_30d = %(count)s AND type > %(type)s)",
)
_BACKWARD = (
    "count_30d ASC, type DESC",
    "WHERE count_30d > %(count)s OR (count_30d = %(count)s AND type < %(type)s)",
)


@dataclass(frozen=True)
class EventTypeRow:
    type: str
    count_30d: int
    last_seen_at: object


class UnknownEventType(LookupError):
    """The cursor names a type this workspace has not sent."""


def window_start(today: date | None = None) -> date:
    return (today or timezone.now().date()) - timedelta(days=WINDOW_DAYS - 1)


def event_types_page(
    *, workspace_id: str, limit: int, starting_after: str | None = None, ending_before: str | None = None
) -> tuple[list[EventTypeRow], bool]:
    """A page of the workspace's event types, most frequent in the last 30 days first, and
    whether there are more in that direction."""
    cursor_type = starting_after if starting_after is not None else ending_before
    params = {"workspace": workspace_id, "since": window_start(), "limit": limit + 1}
    order, where = _FORWARD[0], ""
    if cursor_type is not None:
        cursor = _fetch(params, "WHERE type = %(type)s", _FORWARD[0], {"type": cursor_type, "limit": 1})
        if not cursor:
            raise UnknownEventType(cursor_type)
        params.update(type=cursor_type, count=cursor[0].count_30d)
        order, where = _FORWARD if starting_after is not None else _BACKWARD
    rows = _fetch(params, where, order, {})
    has_more = len(rows) > limit
    rows = rows[:limit]
    if ending_before is not None:
        rows.reverse()
    return rows, has_more


def _fetch(params: dict, where: str, order: str, extra: dict) -> list[EventTypeRow]:
    sql = _TYPES_SQL.format(
        daily=connection.ops.quote_name(EventTypeDaily._meta.db_table), where=where, order=order
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, {**params, **extra})
        return [EventTypeRow(*row) for row in cursor.fetchall()]
