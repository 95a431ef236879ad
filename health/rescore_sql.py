"""Set-based rescoring on PostgreSQL: aggregates, curves, composite and writes all in SQL.

One grouped pass over the workspace's 30-day event window at (customer, type, user) grain
(active days are a 31-bit day mask, so no COUNT(DISTINCT) sort over the events) fills a small
temporary table; one statement then computes the scoring curves of health.signals and the
weighted composite of health.scoring into a second one: on one row of columns per customer for
those with event signals only (nearly all), on one row per signal (window + grouping, with the
JSON breakdown) for those with external signals. The event signals are stored as
CustomerHealth columns (health.representation rebuilds the signal objects on read).
From it, a few statements write the current scores (INSERT ... ON CONFLICT), the customers'
mirror (UPDATE ... FROM) and the day's snapshots (INSERT ... ON CONFLICT). Only the customers
whose score or status moved come back to Python, to publish their webhooks.

The results are those of the Python reference, tests/health/oracle.py, to the last bit: float8
operations in the same order, sums in signal-key order (COLLATE "C", as Python's sort), roundings
as health.rounding.round_half_up (_r, in float8 arithmetic). A change to a curve is made here and
in the oracle; tests/health/test_rescore_parity.py compares the two.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from datetime import date, datetime, timedelta

import orjson
from django.db import connection, transaction
from django.utils import timezone

from customers.models import Customer
from health import generation
from health.models import (
    EVENT_SIGNAL_COLUMNS,
    EVENT_SIGNAL_PARTS,
    EVENT_SIGNAL_PREFIXES,
    CustomerHealth,
    HealthModel,
    HealthSnapshot,
)
from health.signals import CATALOG
from perly.timestamps import iso

logger = logging.getLogger("perly.health")

WINDOW_DAYS = 30
TREND_DAYS = 14
SCORED = "health_scored_tmp"
AGGREGATES = "health_aggregates_tmp"


def _r(expr: str, digits: int = 2) -> str:
    """SQL twin of round_half_up, in float8 arithmetic (a float8 -> text -> numeric round trip
    per rounding cost ~2 s of a 100,000-customer rollup).

    For a >= 0 and q = 10^digits, let k = floor(a * q): the result is k/q or (k+1)/q, and it is
    (k+1)/q exactly when a >= float8((2k+1) / 2q), the float nearest to the midpoint (a float
    division is correctly rounded). If that float is a itself, a's shortest decimal form is the
    midpoint, a tie, which rounds up; otherwise a lies on the same side of the real midpoint as
    of its nearest float. An inexact a * q cannot cross an integer except towards the nearer
    candidate. k/q and (k+1)/q are the floats nearest to those decimals, as in Python's
    float(Decimal). Half away from zero for a negative value (none occurs: every rounded
    quantity is >= 0). tests/health/test_rescore_parity.py compares it with round_half_up."""
    q = f"{10**digits}.0::float8"
    a = f"abs(({expr})::float8)"
    k = f"floor({a} * {q})"
    return (
        f"(sign(({expr})::float8) * CASE WHEN {a} >= (2.0::float8 * {k} + 1.0::float8) / (2.0::float8 * {q}) "
        f"THEN ({k} + 1.0::float8) / {q} ELSE {k} / {q} END)"
    )


def _clamp(expr: str) -> str:
    return f"greatest(0.0::float8, least(100.0::float8, {expr}))"


# Python floats as JSON that decodes to the same float (PostgreSQL renders 5::float8 as `5`).
def _jfloat(expr: str) -> str:
    return (
        f"CASE WHEN ({expr}) IS NULL THEN 'null'::jsonb "
        f"WHEN ({expr})::text ~ '^-?[0-9]+$' THEN to_jsonb(round(({expr})::numeric, 1)) "
        f"ELSE to_jsonb(({expr})::text::numeric) END"
    )


# The event aggregates alone first: a CREATE TABLE AS may run its SELECT in parallel.
_AGG_SQL = f"""
CREATE TEMP TABLE "{AGGREGATES}" ON COMMIT DROP AS
WITH fine AS (
    -- One hashed pass at (customer, type, user) grain: far fewer rows than events, and the
    -- per-customer distinct counts below then run over those rows, not over the events.
    SELECT e.customer_id, e.type, (e.properties ->> 'user_id') AS uid,
           bit_or(1::bigint << ((e.timestamp AT TIME ZONE %(tz)s)::date - %(day0)s::date)) AS days,
           count(*) FILTER (WHERE e.timestamp >= %(recent)s) AS recent,
           count(*) FILTER (WHERE e.timestamp < %(recent)s AND e.timestamp >= %(previous)s) AS previous,
           max(e.timestamp) AS last_at
    FROM events_event e
    WHERE e.workspace_id = %(ws)s AND e.timestamp >= %(start)s AND e.timestamp < %(as_of)s
          {{ids_filter_e}}
    GROUP BY 1, 2, 3
),
agg AS (
    SELECT customer_id, bit_count(bit_or(days)::bit(64)) AS active_days,
           sum(recent)::bigint AS recent, sum(previous)::bigint AS previous,
           count(DISTINCT type) AS types, count(DISTINCT uid) AS users, max(last_at) AS last_at
    FROM fine GROUP BY customer_id
)
SELECT * FROM agg
"""  # noqa: S608

# Constants and SQL snippets only are interpolated; every value is a query parameter.
_SCORE_SQL = f"""
CREATE TEMP TABLE "{SCORED}" ON COMMIT DROP AS
WITH scope AS (
    SELECT c.id AS customer_id FROM customers_customer c
    WHERE c.workspace_id = %(ws)s AND c.deleted_at IS NULL {{ids_filter_c}}
),
base AS MATERIALIZED (
    SELECT s.customer_id,
           coalesce(a.active_days, 0) AS active_days, coalesce(a.recent, 0) AS recent,
           coalesce(a.previous, 0) AS previous, coalesce(a.types, 0) AS types,
           coalesce(a.users, 0) AS users,
           -- The window's newest event is the newest ever; only the silent ones need a probe
           -- of the (customer, -timestamp) index (COALESCE evaluates it only when needed).
           coalesce(a.last_at, (SELECT e2.timestamp FROM events_event e2
                                WHERE e2.customer_id = s.customer_id AND e2.timestamp < %(as_of)s
                                ORDER BY e2.timestamp DESC LIMIT 1)) AS last_at
    FROM scope s LEFT JOIN "{{aggregates}}" a ON a.customer_id = s.customer_id
),
-- MATERIALIZED (like base): the planner would otherwise substitute `silent` and `percent` into
-- every expression below that uses them, and _r repeats its argument.
ev AS MATERIALIZED (
    SELECT t.*,
           -- The curves before their rounding (signal_rows rounds plain columns).
           {_clamp("100.0::float8 * t.days30 / 20.0::float8")} AS active_raw,
           {_clamp("2.0::float8 * (t.percent - 50.0::float8)")} AS trend_raw,
           {_clamp("100.0::float8 * t.types / 5.0::float8")} AS breadth_raw,
           {_clamp("100.0::float8 * t.users / 3.0::float8")} AS users_raw,
           {_clamp("100.0::float8 * (30.0::float8 - t.silent) / 29.0::float8")} AS recency_raw
    FROM (
        SELECT b.*, least(b.active_days, 30) AS days30,
               greatest(0.0::float8, (extract(epoch FROM %(as_of)s::timestamptz) - extract(epoch FROM b.last_at))
                                     ::float8 / 86400.0::float8) AS silent,
               CASE WHEN b.previous > 0
                    THEN {_r("100.0::float8 * b.recent / b.previous::float8")} END AS percent
        FROM base b WHERE b.last_at IS NOT NULL
        OFFSET 0
    ) AS t
),
-- Each customer's event signals (value and score; absent: null), rounded once for both paths.
curves AS MATERIALIZED (
    SELECT ev.customer_id,
           ev.customer_id IN (SELECT x.customer_id FROM health_externalsignal x
                              WHERE x.workspace_id = %(ws)s AND x.computed_at <= %(as_of)s) AS has_external,
           ev.days30::float8 AS active_days_value, {_r("ev.active_raw")} AS active_days_score,
           ev.percent AS volume_trend_value,
           CASE WHEN ev.previous = 0 THEN (CASE WHEN ev.recent > 0 THEN 100.0::float8 ELSE 0.0::float8 END)
                ELSE {_r("ev.trend_raw")} END AS volume_trend_score,
           ev.types::float8 AS breadth_value, {_r("ev.breadth_raw")} AS breadth_score,
           CASE WHEN ev.users > 0 THEN ev.users::float8 END AS users_value,
           CASE WHEN ev.users > 0 THEN {_r("ev.users_raw")} END AS users_score,
           {_r("ev.silent")} AS recency_value,
           CASE WHEN ev.silent <= 1.0 THEN 100.0::float8 ELSE {_r("ev.recency_raw")} END AS recency_score
    FROM ev
),
-- Customers with external signals: one row per signal, weights, contributions and sums in key
-- order over the rows (and the external signals' JSON breakdown).
signal_rows AS (
    SELECT c.customer_id, v.key, true AS is_event, v.value_f, NULL::jsonb AS value,
           v.score, NULL::jsonb AS score_json,
           NULL::text AS source, NULL::text AS computed_at,
           NULL::text AS category, NULL::text AS label, NULL::text AS unit
    FROM curves c, LATERAL (VALUES {{event_values}}) AS v(key, value_f, score)
    WHERE c.has_external AND v.score IS NOT NULL
    UNION ALL
    SELECT x.customer_id, x.key, false, NULL::float8, {_jfloat("x.value")}, x.score, {_jfloat("x.score")},
           x.source, to_char(x.computed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
           x.category, x.label, x.unit
    FROM health_externalsignal x JOIN scope s ON s.customer_id = x.customer_id
    WHERE x.workspace_id = %(ws)s AND x.computed_at <= %(as_of)s
),
weighted AS (
    SELECT r.*, coalesce(cat.weight, 0.0::float8) AS weight,
           coalesce(cat.weight_json, '0.0'::jsonb) AS weight_json,
           coalesce(nullif(r.category, ''), cat.category, '') AS category_out,
           coalesce(nullif(r.label, ''), cat.label, r.key) AS label_out,
           coalesce(r.unit, cat.unit, '') AS unit_out,
           sum(coalesce(cat.weight, 0.0::float8)) OVER (PARTITION BY r.customer_id ORDER BY r.key COLLATE "C"
               ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING) AS present
    FROM signal_rows r LEFT JOIN jsonb_to_recordset(%(catalog)s::jsonb)
        AS cat(key text, category text, label text, unit text, weight float8, weight_json jsonb)
        ON cat.key = r.key
),
contributed AS (
    SELECT w.*, CASE WHEN w.present > 0 THEN {_r("w.weight * w.score / w.present")} ELSE 0.0::float8 END
                AS contribution
    FROM weighted w
),
composite AS (
    SELECT customer_id, max(present) AS present,
           sum(contribution ORDER BY key COLLATE "C") AS score_sum,
           {{event_columns}},
           json_agg(json_build_object(
               'key', key, 'category', category_out, 'label', label_out, 'value', value,
               'unit', unit_out, 'score', score_json, 'source', source, 'computed_at', computed_at,
               'weight', weight_json, 'contribution', {_jfloat("contribution")}
           ) ORDER BY key COLLATE "C") FILTER (WHERE NOT is_event) AS signals
    FROM contributed GROUP BY customer_id
),
-- Customers with event signals only (nearly all): the same math on the columns of one row
-- (key order: {{wide_order}}), with no per-signal rows to sort and group.
wide_present AS (
    SELECT c.*, {{wide_present}} AS present FROM curves c WHERE NOT c.has_external OFFSET 0
),
wide_contributed AS (
    SELECT w.*, {{wide_contributions}} FROM wide_present w OFFSET 0
),
wide AS (
    SELECT customer_id, present, {{wide_score_sum}} AS score_sum, NULL::json AS signals,
           {{event_column_names}}
    FROM wide_contributed
),
scored AS (
    SELECT s.customer_id,
           CASE WHEN c.present > 0 THEN {_r("c.score_sum")}::float8 END AS score,
           CASE WHEN c.present > 0 AND %(total_weight)s > 0
                THEN {_r("c.present / %(total_weight)s", 4)}::float8 ELSE 0.0 END AS confidence,
           coalesce(c.signals::jsonb, '[]'::jsonb) AS signals, {{event_column_names}}
    FROM scope s LEFT JOIN (
        SELECT customer_id, present, score_sum, signals, {{event_column_names}} FROM composite
        UNION ALL
        SELECT customer_id, present, score_sum, signals, {{event_column_names}} FROM wide
    ) c ON c.customer_id = s.customer_id
)
SELECT customer_id, score, confidence, signals, {{event_column_names}},
       CASE WHEN score IS NULL THEN 'unknown' WHEN score >= %(healthy)s THEN 'healthy'
            WHEN score < %(at_risk)s THEN 'at_risk' ELSE 'neutral' END AS status
FROM scored
"""  # noqa: S608


_PART_EXPR = {
    "value": "value_f",
    "score": "score",
    "weight": "weight",
    "contribution": "contribution::float8",
}
# The event signals pivoted into CustomerHealth's columns (null: the signal is absent).
_EVENT_COLUMNS = ",\n           ".join(
    f"max({_PART_EXPR[part]}) FILTER (WHERE is_event AND key = '{key}') AS {prefix}_{part}"
    for key, prefix in EVENT_SIGNAL_PREFIXES.items()
    for part in EVENT_SIGNAL_PARTS
)
_EVENT_COLUMN_NAMES = ", ".join(EVENT_SIGNAL_COLUMNS)
_EVENT_VALUES = ", ".join(
    f"('{key}', c.{prefix}_value, c.{prefix}_score)" for key, prefix in EVENT_SIGNAL_PREFIXES.items()
)
# The one-row form sums in key order too (COLLATE "C" = Python's str order). An absent signal
# adds 0.0, which leaves a non-negative float sum unchanged: x + 0.0 == x.
_WIDE = [EVENT_SIGNAL_PREFIXES[key] for key in sorted(EVENT_SIGNAL_PREFIXES)]


def _weight(prefix: str) -> str:
    return f"%(w_{prefix})s::float8"


_WIDE_PRESENT = " + ".join(
    f"(CASE WHEN c.{prefix}_score IS NOT NULL THEN {_weight(prefix)} ELSE 0.0::float8 END)"
    for prefix in _WIDE
)
_WIDE_CONTRIBUTIONS = ", ".join(
    f"CASE WHEN w.{prefix}_score IS NOT NULL THEN {_weight(prefix)} END AS {prefix}_weight, "
    f"CASE WHEN w.{prefix}_score IS NOT NULL THEN (CASE WHEN w.present > 0 "
    f"THEN {_r(f'{_weight(prefix)} * w.{prefix}_score / w.present')} ELSE 0.0::float8 END) "
    f"END AS {prefix}_contribution"
    for prefix in _WIDE
)
_WIDE_SCORE_SUM = " + ".join(f"coalesce({prefix}_contribution, 0.0::float8)" for prefix in _WIDE)


def _catalog(model: HealthModel) -> str:
    """Signal definitions + the model's weights, as one JSON parameter (weight_json keeps the
    Python float's JSON form, so stored breakdowns decode to the same values)."""
    keys = set(CATALOG) | set(model.weights)
    rows = []
    for key in sorted(keys):
        definition = CATALOG.get(key)
        weight = float(model.weights.get(key, 0.0))
        rows.append(
            {
                "key": key,
                "category": definition.category if definition else None,
                "label": definition.label if definition else None,
                "unit": definition.unit if definition else None,
                "weight": weight,
                "weight_json": weight,
            }
        )
    return orjson.dumps(rows).decode()


class _Timer:
    """Per-statement timings, logged at debug level (the benchmark prints them). CPU_PROBE, when
    the benchmark sets it, returns the database backend's CPU seconds so far: each step then
    also records the CPU it cost there, which the machine's other load does not change."""

    def __init__(self) -> None:
        self.steps: list[tuple[str, float]] = []
        self.cpu: list[float] = []
        self._last = time.perf_counter()
        self._last_cpu = CPU_PROBE() if CPU_PROBE else 0.0

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.steps.append((name, now - self._last))
        self._last = now
        if CPU_PROBE:
            cpu = CPU_PROBE()
            self.cpu.append(cpu - self._last_cpu)
            self._last_cpu = cpu


LAST_TIMINGS: list[tuple[str, float]] = []
LAST_CPU: list[float] = []
CPU_PROBE: Callable[[], float] | None = None


def rescore_set_based(
    *,
    workspace_id: str,
    model: HealthModel,
    ids: list[str] | None,
    as_of: datetime,
    snapshot_date: date | None,
    write_current: bool,
) -> int:
    """health.rescore.rescore on PostgreSQL; returns the number of customers scored."""
    timer = _Timer()
    start = as_of - timedelta(days=WINDOW_DAYS)
    tz = timezone.get_current_timezone()
    params = {
        "ws": workspace_id,
        "as_of": as_of,
        "start": start,
        "recent": as_of - timedelta(days=TREND_DAYS),
        "previous": as_of - timedelta(days=2 * TREND_DAYS),
        "tz": str(tz),
        "day0": start.astimezone(tz).date(),
        "computed_at": iso(as_of),
        "catalog": _catalog(model),
        "total_weight": float(sum(weight for weight in model.weights.values() if weight > 0)),
        "healthy": float(model.healthy_threshold),
        "at_risk": float(model.at_risk_threshold),
        **{
            f"w_{prefix}": float(model.weights.get(key, 0.0)) for key, prefix in EVENT_SIGNAL_PREFIXES.items()
        },
        "ids": ids,
    }
    ids_filter_e = "AND e.customer_id = ANY(%(ids)s)" if ids is not None else ""
    sql = _SCORE_SQL.format(
        ids_filter_c="AND c.id = ANY(%(ids)s)" if ids is not None else "",
        aggregates=AGGREGATES,
        event_columns=_EVENT_COLUMNS,
        event_column_names=_EVENT_COLUMN_NAMES,
        event_values=_EVENT_VALUES,
        wide_order=", ".join(_WIDE),
        wide_present=_WIDE_PRESENT,
        wide_contributions=_WIDE_CONTRIBUTIONS,
        wide_score_sum=_WIDE_SCORE_SUM,
    )
    with transaction.atomic(), connection.cursor() as cursor:
        # Shortest round-trip float text (the rounding rule relies on it); the hash
        # table of a 100,000-customer workspace stays in memory.
        cursor.execute("SET LOCAL extra_float_digits = 1")
        cursor.execute("SET LOCAL work_mem = '256MB'")
        # JIT compiling the scoring statement costs ~1.2 s and saves less than that.
        cursor.execute("SET LOCAL jit = off")
        cursor.execute(f'DROP TABLE IF EXISTS "{SCORED}", "{AGGREGATES}"')
        if ids is None:
            # The planner guesses ~1.1 M (customer, type, user) groups for 100,000 customers (it
            # cannot know how many distinct properties->>'user_id' there are; ~240,000 in the
            # benchmark) and so prices the Gather of the workers' partial aggregates out of a
            # parallel plan; the floor's GROUP BY runs in parallel. Same result, ~2x less leader CPU.
            # JIT pays off on this scan of millions of events (~0.4 s less, A/B), not below.
            cursor.execute("SET LOCAL parallel_tuple_cost = 0.001")
            cursor.execute("SET LOCAL jit = on")
        cursor.execute(_AGG_SQL.format(ids_filter_e=ids_filter_e), params)
        if ids is None:
            cursor.execute("RESET parallel_tuple_cost")
            cursor.execute("SET LOCAL jit = off")
        timer.lap("event aggregate")
        cursor.execute(sql, params)
        count = cursor.rowcount
        timer.lap("curves + composite")
        if write_current:
            changed = _changed(cursor, as_of)
            timer.lap("changed scores")
            _write_current(cursor, workspace_id=workspace_id, model=model, as_of=as_of, timer=timer)
            timer.lap("customers mirror")
            transaction.on_commit(lambda: generation.bump(workspace_id))
            if changed:
                _publish_changed(workspace_id, model, changed, as_of)
                timer.lap(f"publish {len(changed)} webhook customer(s)")
        if snapshot_date is not None:
            cursor.execute(
                f"""
                INSERT INTO "{HealthSnapshot._meta.db_table}"
                    (workspace_id, customer_id, date, score, status, confidence, model_version, computed_at)
                SELECT %(ws)s, customer_id, %(day)s, score, status, confidence, %(version)s, %(as_of)s
                FROM "{SCORED}" WHERE score IS NOT NULL
                ON CONFLICT (customer_id, date) DO UPDATE SET score = EXCLUDED.score,
                    status = EXCLUDED.status, confidence = EXCLUDED.confidence,
                    model_version = EXCLUDED.model_version, computed_at = EXCLUDED.computed_at
                """,  # noqa: S608
                {"ws": workspace_id, "day": snapshot_date, "version": model.version, "as_of": as_of},
            )
            timer.lap("write snapshots")
        cursor.execute(f'DROP TABLE "{SCORED}", "{AGGREGATES}"')
    LAST_TIMINGS[:] = timer.steps
    LAST_CPU[:] = timer.cpu
    logger.debug("health: set-based rescore of %s: %s", workspace_id, timer.steps)
    return count


# A customer's webhooks are due when its status moved, or its score moved >= NOTIFY_DELTA from the
# last notified one (health.rescore._notifications has the full rule; this is its superset filter).
_MOVED = """(
    ({h}.notified_score IS NULL) <> ({t}.score IS NULL)
    OR coalesce(abs({t}.score - {h}.notified_score) >= %(delta)s, false)
    OR {t}.status <> coalesce({h}.notified_status, 'unknown')
)"""


def _changed(cursor, as_of: datetime) -> list[tuple]:
    from health.rescore import NOTIFY_DELTA

    cursor.execute(
        f"""
        SELECT t.customer_id, t.score, t.status, t.confidence, t.signals,
               h.score, h.status, h.notified_score, h.notified_status, {", ".join(f"t.{c}" for c in EVENT_SIGNAL_COLUMNS)}
        FROM "{SCORED}" t JOIN "{CustomerHealth._meta.db_table}" h ON h.customer_id = t.customer_id
        WHERE h.computed_at <= %(as_of)s AND (t.status <> h.status OR {_MOVED.format(h="h", t="t")})
        """,  # noqa: S608
        {"as_of": as_of, "delta": NOTIFY_DELTA},
    )
    return cursor.fetchall()


def _write_current(
    cursor, *, workspace_id: str, model: HealthModel, as_of: datetime, timer: _Timer | None = None
) -> None:
    from health.rescore import NOTIFY_DELTA

    table = CustomerHealth._meta.db_table
    moved = _MOVED.format(h=f'"{table}"', t="EXCLUDED")
    # A first score is the notification baseline; otherwise notified_* follow the score only
    # when a score_changed webhook went out (same rule as health.rescore._notifications).
    cursor.execute(
        f"""
        INSERT INTO "{table}" (customer_id, workspace_id, score, status, confidence, model_version,
                               signals, computed_at, notified_score, notified_status, {_EVENT_COLUMN_NAMES})
        SELECT customer_id, %(ws)s, score, status, confidence, %(version)s, signals, %(as_of)s,
               score, status, {_EVENT_COLUMN_NAMES}
        FROM "{SCORED}"
        ON CONFLICT (customer_id) DO UPDATE SET
            score = EXCLUDED.score, status = EXCLUDED.status, confidence = EXCLUDED.confidence,
            model_version = EXCLUDED.model_version, signals = EXCLUDED.signals,
            computed_at = EXCLUDED.computed_at,
            {", ".join(f"{c} = EXCLUDED.{c}" for c in EVENT_SIGNAL_COLUMNS)},
            notified_score = CASE WHEN {moved} THEN EXCLUDED.score ELSE "{table}".notified_score END,
            notified_status = CASE WHEN {moved} THEN EXCLUDED.status ELSE "{table}".notified_status END
        WHERE "{table}".computed_at <= EXCLUDED.computed_at
        """,  # noqa: S608
        {"ws": workspace_id, "version": model.version, "as_of": as_of, "delta": NOTIFY_DELTA},
    )
    if timer is not None:
        timer.lap("write current")
    cursor.execute(
        f"""
        UPDATE "{Customer._meta.db_table}" AS c
        SET health_score = t.score, health_status = t.status, health_computed_at = %(as_of)s
        FROM "{SCORED}" AS t
        WHERE c.id = t.customer_id AND (c.health_computed_at IS NULL OR c.health_computed_at <= %(as_of)s)
        """,  # noqa: S608
        {"as_of": as_of},
    )


def _publish_changed(workspace_id: str, model: HealthModel, changed: list[tuple], as_of: datetime) -> None:
    from health.representation import stored_signals
    from health.rescore import CurrentRow, _notifications, _publish

    rows, previous = [], {}
    for (
        customer_id,
        score,
        status,
        confidence,
        signals,
        old_score,
        old_status,
        n_score,
        n_status,
        *event,
    ) in changed:
        if isinstance(signals, str):
            signals = json.loads(signals)
        signals = stored_signals(
            {"signals": signals, "computed_at": as_of, **dict(zip(EVENT_SIGNAL_COLUMNS, event, strict=True))}
        )
        rows.append(
            CurrentRow(
                customer_id=customer_id,
                workspace_id=workspace_id,
                score=score,
                status=status,
                confidence=confidence,
                model_version=model.version,
                signals=signals,
                computed_at=as_of,
                notified_score=n_score,
                notified_status=n_status,
            )
        )
        previous[customer_id] = {
            "score": old_score,
            "status": old_status,
            "notified_score": n_score,
            "notified_status": n_status,
        }
    notifications = _notifications(model, rows, previous)
    if notifications:
        _publish(workspace_id, rows, notifications)
