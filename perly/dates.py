"""The one parser for date and datetime query parameters, and the range they must fall in.

Every `date` / `date-time` query parameter (history `start`/`end`, at-risk `dropped_after`,
customers `created_*`, events `timestamp_*`) is read here. Values outside MIN_DATE..MAX_DATE are
a 400: endpoints do range arithmetic on them (a history's default start is 89 days or 26 weeks
before `end`), and near the ends of Python's calendar (year 1, year 9999) that arithmetic
overflowed into a 500. The range leaves years of margin for any such arithmetic.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time

from django.utils.dateparse import parse_date, parse_datetime

MIN_DATE = date(1900, 1, 1)
MAX_DATE = date(2999, 12, 31)
RANGE_TEXT = f"from {MIN_DATE.isoformat()} to {MAX_DATE.isoformat()}"
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$", re.ASCII)
# The extended ISO 8601 profile only: Python's fromisoformat also takes week dates (2026-W01-1),
# ordinal dates (2026-001) and the basic format (20260101), which the API does not document.
_DATETIME_RE = re.compile(
    r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}(:?\d{2})?)?$", re.ASCII
)


class DateParamError(ValueError):
    """`reason` is "shape" (not a date / datetime) or "range" (outside MIN_DATE..MAX_DATE)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def _in_range(day: date) -> None:
    if not MIN_DATE <= day <= MAX_DATE:
        raise DateParamError("range")


def parse_query_date(raw: str) -> date:
    """`YYYY-MM-DD` within the range, else DateParamError."""
    if not isinstance(raw, str) or not _DATE_RE.match(raw):
        raise DateParamError("shape")
    try:
        day = date.fromisoformat(raw)
    except ValueError:
        raise DateParamError("shape") from None
    _in_range(day)
    return day


def parse_query_datetime(raw: str) -> datetime:
    """`YYYY-MM-DD` (midnight UTC) or an ISO 8601 datetime (naive means UTC), in UTC and within
    the range, else DateParamError."""
    if not isinstance(raw, str) or not (_DATE_RE.match(raw) or _DATETIME_RE.match(raw)):
        raise DateParamError("shape")
    try:
        # parse_* return None for a wrong shape and raise ValueError for an impossible date.
        parsed = parse_datetime(raw)
        if parsed is None:
            day = parse_date(raw) if _DATE_RE.match(raw) else None
            if day is None:
                raise DateParamError("shape")
            parsed = datetime.combine(day, time.min)
    except ValueError:
        raise DateParamError("shape") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    _in_range(parsed.date())  # judged before conversion: converting year 1 or 9999 can overflow
    # In UTC before it reaches the database: Python allows offsets up to 24 h, PostgreSQL refuses
    # those beyond 15:59.
    parsed = parsed.astimezone(UTC)
    _in_range(parsed.date())
    return parsed
