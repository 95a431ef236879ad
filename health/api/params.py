"""Strict query-parameter parsing for the health endpoints (every bad value is a 400)."""

from __future__ import annotations

import math
from datetime import date

from perly.dates import RANGE_TEXT, DateParamError, parse_query_date
from perly.errors import invalid_parameter


def parse_date_param(params, name: str) -> date | None:
    raw = params.get(name)
    if raw is None:
        return None
    try:
        return parse_query_date(raw)
    except DateParamError:
        raise invalid_parameter(name, f"{name} must be a date, YYYY-MM-DD, {RANGE_TEXT}.") from None


def parse_score_param(params, name: str) -> float | None:
    raw = params.get(name)
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or not 0 <= value <= 100:
        raise invalid_parameter(name, f"{name} must be a number from 0 to 100.")
    return value


def parse_choice_param(params, name: str, choices: tuple[str, ...], default: str) -> str:
    raw = params.get(name, default)
    if raw not in choices:
        raise invalid_parameter(name, f"{name} must be one of: {', '.join(choices)}.")
    return raw
