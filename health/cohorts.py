"""Churn by cohort: the customers not churned at a past date, split into equal-count groups by a
metric's value as of the end of that day, with each group's churn over the following horizon.

- Values: the backfill's as-of machinery (health.rescore_sql) from the events as they stood at
  the end of `as_of`; a metric's values come from one grouped pass over its own windows, the
  score from the whole scoring pass (write_current=False, no snapshot). Nothing is written.
- Who counts: a live customer that existed at the end of `as_of`: created by then, or with any
  event or signal at or before it, whatever its created_at (imported history), and that has a
  value. Every such customer has a metric's value (0 events when it had none yet) unless the
  metric is undefined for it: a ratio over a zero denominator, a change from nothing, recency
  with no event yet. A score needs an event or an external signal by then.
- Not churned at `as_of`: no `churned` outcome at or before the end of the day that is not
  followed by a `reactivated` one at or before it.
- Churned: a `churned` outcome in (end of as_of, end of as_of + horizon_days].
- Groups: ntile over (value, customer id), so sizes differ by at most one (the first groups are
  the larger) and ties at a boundary split by id; lowest values first. Fewer observations than
  groups give one group per observation.
- Interval: the 95% Wilson score interval of each group's churn rate (z = 1.959964).
- Cached per scoring generation and model version for at most a minute (metric_cohorts).
"""

from __future__ import annotations

import hashlib
import logging
import math
from datetime import date, timedelta

from django.core.cache import cache
from django.db import connection, transaction
from django.utils import timezone

from health import churn_labels, rescore_sql
from health import generation as generation_counter
from health.metrics import BUILTIN_SPECS, model_specs
from health.models import HealthModel
from health.rescore_sql import rescore_set_based
from health.services import end_of_day, health_model_current
from perly.errors import ApiError, invalid_parameter
from perly.timestamps import iso

logger = logging.getLogger("perly.health")

MAX_HORIZON_DAYS = 365
MAX_GROUPS = 20
MAX_DAYS_BACK = 730
Z95 = 1.959964

# The grouping and labels over a (customer_id, value) relation `{source}`.
_GROUPS_SQL = f"""
WITH observed AS (
    SELECT v.customer_id, v.value, {churn_labels.churned_within_horizon("v.customer_id")} AS churned
    FROM ({{source}}) v
    WHERE v.value IS NOT NULL AND {churn_labels.live_at_end("v.customer_id")}
),
grouped AS (
    SELECT ntile(%(groups)s) OVER (ORDER BY value, customer_id) AS g, value, churned FROM observed
)
SELECT g, min(value), max(value), avg(value), count(*), count(*) FILTER (WHERE churned)
FROM grouped GROUP BY g ORDER BY g
"""  # noqa: S608 (our own identifiers only; values are parameters)


def _int_param(params, name: str, default: int, low: int, high: int) -> int:
    raw = params.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise invalid_parameter(name, f"{name} must be an integer from {low} to {high}.")
    return int(raw)


def parse_cohort_params(params, *, today: date) -> tuple[date, int, int]:
    """(as_of, horizon_days, groups) from query parameters; every bad value is a 400."""
    from health.api.params import parse_date_param

    horizon = _int_param(params, "horizon_days", 30, 1, MAX_HORIZON_DAYS)
    groups = _int_param(params, "groups", 10, 2, MAX_GROUPS)
    as_of = parse_date_param(params, "as_of") or today - timedelta(days=horizon)
    if as_of < today - timedelta(days=MAX_DAYS_BACK):
        raise invalid_parameter("as_of", f"as_of may be at most {MAX_DAYS_BACK} days back.")
    if as_of > today - timedelta(days=horizon):
        raise invalid_parameter(
            "as_of", "as_of must be at least horizon_days in the past, so the horizon has passed."
        )
    return as_of, horizon, groups


def wilson(churned: int, n: int, z: float = Z95) -> tuple[float, float]:
    if n == 0:
        return 0.0, 0.0
    p = churned / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def _spec(model: HealthModel, key: str):
    for spec in model_specs(model.metrics):
        if spec.key == key:
            return spec
    return None


def metric_known(*, workspace_id: str, key: str) -> bool:
    if key == "score" or key in BUILTIN_SPECS:
        return True
    return _spec(health_model_current(workspace_id=workspace_id), key) is not None


CACHE_TTL_SECONDS = 60


def metric_cohorts(*, workspace_id: str, key: str, as_of: date, horizon_days: int, groups: int) -> dict:
    """The metric_cohorts object of `key` (a signal key of the current model, or "score").

    Cached like the summary: per workspace scoring generation (a rescore, which follows every
    ingestion, starts a new one) and model version, for at most CACHE_TTL_SECONDS, so a dashboard
    reloading a cohort chart does not recompute every customer's value each time. An outcome
    recorded meanwhile shows within that TTL."""
    model = health_model_current(workspace_id=workspace_id)
    generation = generation_counter.current(workspace_id)
    cache_key = None
    if generation >= 0:
        cache_key = (
            "health:cohorts:"
            + hashlib.sha256(
                repr((workspace_id, generation, model.version, key, as_of, horizon_days, groups)).encode()
            ).hexdigest()
        )
        try:
            cached = cache.get(cache_key)
        except Exception:  # a cache outage must not break reads
            cached = None
        if cached is not None:
            return cached
    result = _metric_cohorts(workspace_id, model, key, as_of, horizon_days, groups)
    if cache_key is not None:
        try:
            cache.set(cache_key, result, timeout=CACHE_TTL_SECONDS)
        except Exception as exc:
            logger.warning("health: could not cache cohorts: %s", exc)
    return result


def _metric_cohorts(
    workspace_id: str, model: HealthModel, key: str, as_of: date, horizon_days: int, groups: int
) -> dict:
    end = end_of_day(as_of)
    params = {**churn_labels.label_params(end, horizon_days), "groups": groups}
    sql = _GROUPS_SQL

    def grouped(cursor, source: str) -> list[tuple]:
        cursor.execute(sql.replace("{source}", source), params)
        return cursor.fetchall()

    if key == "score":
        rows = rescore_set_based(
            workspace_id=workspace_id,
            model=model,
            ids=None,
            as_of=end,
            snapshot_date=None,
            write_current=False,
            read_scored=lambda cursor: grouped(
                cursor,
                f'SELECT customer_id, score AS value FROM "{rescore_sql.SCORED}"',  # noqa: S608
            ),
        )
    else:
        spec = _spec(model, key)
        if spec is None:
            raise ApiError(404, "resource_missing", f"No such metric: '{key}'.", param="key")
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET LOCAL extra_float_digits = 1")
            cursor.execute("SET LOCAL work_mem = '256MB'")
            table = rescore_sql.metric_values_as_of(cursor, workspace_id=workspace_id, spec=spec, as_of=end)
            rows = grouped(cursor, f'SELECT customer_id, v0 AS value FROM "{table}"')  # noqa: S608
            cursor.execute(f'DROP TABLE "{table}"')
    observations = sum(row[4] for row in rows)
    churned = sum(row[5] for row in rows)
    out = []
    for _g, low, high, mean, customers, lost in rows:
        interval = wilson(lost, customers)
        out.append(
            {
                "min": low,
                "max": high,
                "mean": round(float(mean), 4),
                "customers": customers,
                "churned": lost,
                "churn_rate": round(lost / customers, 4),
                "interval": {"low": round(interval[0], 4), "high": round(interval[1], 4)},
            }
        )
    return {
        "object": "metric_cohorts",
        "metric": key,
        "as_of": as_of.isoformat(),
        "horizon_days": horizon_days,
        "observations": observations,
        "overall_churn_rate": round(churned / observations, 4) if observations else None,
        "groups": out,
        "computed_at": iso(timezone.now()),
    }
