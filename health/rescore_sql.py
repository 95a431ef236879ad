"""Set-based rescoring on PostgreSQL: aggregates, curves, composite and writes all in SQL.

One grouped pass over the workspace's event windows at (customer[, type][, user]) grain
(active days are a day bit mask, so no COUNT(DISTINCT) sort over the events; rows older than
every window of all types are read only for the types that need them) fills a small temporary
table; one statement then computes the scoring curves of health.signals (percentiles by binary
search in the population's sorted values) and the weighted composite of health.scoring into a
second one: on one row of columns per customer for those with event signals only (nearly all),
on one row per signal (window + grouping, with the JSON breakdown) for those with external
signals. The event signals are stored as CustomerHealth arrays (health.representation rebuilds
the signal objects on read).
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
from health.metrics import PERCENTILE_MIN, model_specs
from health.models import ARRAY_COLUMNS, CustomerHealth, HealthModel, HealthSnapshot
from health.signals import CATALOG
from perly.timestamps import iso

logger = logging.getLogger("perly.health")

SCORED = "health_scored_tmp"
AGGREGATES = "health_aggregates_tmp"


def _r(expr: str, digits: int = 2, *, nonnegative: bool = False) -> str:
    """SQL twin of round_half_up, in float8 arithmetic (a float8 -> text -> numeric round trip
    per rounding cost ~2 s of a 100,000-customer rollup).

    For a >= 0 and q = 10^digits, let k = floor(a * q): the result is k/q or (k+1)/q, and it is
    (k+1)/q exactly when a >= float8((2k+1) / 2q), the float nearest to the midpoint (a float
    division is correctly rounded). If that float is a itself, a's shortest decimal form is the
    midpoint, a tie, which rounds up; otherwise a lies on the same side of the real midpoint as
    of its nearest float. An inexact a * q cannot cross an integer except towards the nearer
    candidate. k/q and (k+1)/q are the floats nearest to those decimals, as in Python's
    float(Decimal). Half away from zero for a negative value (none occurs: every rounded
    quantity is >= 0). `nonnegative` drops the sign handling where the expression cannot be
    negative (a clamped curve, a weight times a score): the same result with fewer operations,
    which add up over 100,000 customers and every signal.
    tests/health/test_rescore_parity.py compares it with round_half_up."""
    q = f"{10**digits}.0::float8"
    a = f"(({expr})::float8)" if nonnegative else f"abs(({expr})::float8)"
    k = f"floor({a} * {q})"
    rounded = f"CASE WHEN {a} >= (2.0::float8 * {k} + 1.0::float8) / (2.0::float8 * {q}) THEN ({k} + 1.0::float8) / {q} ELSE {k} / {q} END"
    return f"({rounded})" if nonnegative else f"(sign(({expr})::float8) * {rounded})"


def _clamp(expr: str) -> str:
    return f"greatest(0.0::float8, least(100.0::float8, {expr}))"


# Python floats as JSON that decodes to the same float (PostgreSQL renders 5::float8 as `5`).
def _jfloat(expr: str) -> str:
    return (
        f"CASE WHEN ({expr}) IS NULL THEN 'null'::jsonb "
        f"WHEN ({expr})::text ~ '^-?[0-9]+$' THEN to_jsonb(round(({expr})::numeric, 1)) "
        f"ELSE to_jsonb(({expr})::text::numeric) END"
    )


def _newest_event_before_as_of(customer: str) -> str:
    """A customer's newest event before as_of: one probe of the (customer, -timestamp) index."""
    return (
        f"(SELECT e2.timestamp FROM events_event e2 WHERE e2.customer_id = {customer} "  # noqa: S608 (a column name of ours)
        "AND e2.timestamp < %(as_of)s ORDER BY e2.timestamp DESC LIMIT 1)"
    )


# The workspace's customers with an external signal computed at or before as_of.
_WITH_EXTERNAL_SIGNAL = (
    "(SELECT x.customer_id FROM health_externalsignal x "
    "WHERE x.workspace_id = %(ws)s AND x.computed_at <= %(as_of)s)"
)


# --- The event signals' SQL, generated from the model version's metric specs ---------------------
#
# Only constants and SQL snippets chosen here are interpolated; every value that comes from a
# definition (event types, property names, points, windows' bounds) is a bound parameter.


def _base_specs(spec):
    """The aggregate specs a signal reads: itself, or a derived signal's operands."""
    operands = [operand for operand in (spec.num, spec.den, spec.base) if operand is not None]
    return [base for operand in operands for base in _base_specs(operand)] if operands else [spec]


class _Plan:
    """The SQL of one model version's event signals (health.metrics specs, in key order).

    Fine stage (one grouped pass over the events, at (customer[, type][, user]) grain): per distinct
    slice (a window, and the event types it counts) a filtered count, and where needed an
    active-day bit mask, property sums and the newest event. Customer stage: per distinct
    aggregate one column over the fine rows. Then per signal its value, the curve's input and the
    curve (points, or the percentile over the population).

    The fine grain carries the type only when a signal counts distinct types; event types are
    then filtered at the customer stage, otherwise in the fine slices (customer grain: fewer,
    smaller groups). The scan reads only the rows some slice needs: a window reaching further
    back than every window of all types (a `change` metric's previous window, say) adds only its
    own types' rows."""

    def __init__(self, specs, *, as_of: datetime, tz, scan_floor: int = 30) -> None:
        self.specs = specs
        self.as_of = as_of
        self.tz = tz
        self.params: dict = {}
        self.fine: list[str] = []
        self.agg: list[str] = []
        self.base: list[str] = []
        self._bounds: dict[tuple[int, int], str] = {}
        self._conds: dict[str, str] = {}
        # Per bound the event types its slices read: a set, or None for every type.
        self._bound_types: dict[str, set[str] | None] = {}
        self._slices: dict[tuple, str] = {}
        self._slice_window: dict[str, tuple[int, int]] = {}  # a slice's (window, offset)
        self._fine_cols: dict[tuple, str] = {}
        self._aggs: dict[tuple, str] = {}
        self.scan_days = scan_floor
        self.raw: list[str] = []  # r{i}: the value before rounding
        self.shown: list[str] = []  # v{i} (the value) and, where it differs, x{i} (the curve's input)
        self.stored: list[str] = []  # the same columns from a stored CustomerHealth row `h`
        self.carried: list[str] = []  # the aggregates the curves and scores read too
        self.curve: list[str] = []  # c{i}: the curve before rounding
        self.sorted_columns: list[str] = []  # each percentile signal's population, sorted
        self.rank_columns: list[str] = []
        self.scores: list[str] = []  # s{i}_value, s{i}_score
        self.needs_uid = False
        self.type_grain = any(base.kind == "types" for spec in specs for base in _base_specs(spec))
        for index, spec in enumerate(specs):
            self._signal(index, spec)
        self.scan_filter, self.last_at = self._scan()

    @property
    def uid(self) -> str:
        # Without a distinct_users signal the fine rows need no user, and no JSON extraction
        # per event.
        return "(e.properties ->> 'user_id')" if self.needs_uid else "NULL::text"

    @property
    def type(self) -> str:
        return "e.type" if self.type_grain else "NULL::text"

    def param(self, value) -> str:
        name = f"p{len(self.params)}"
        self.params[name] = value
        return f"%({name})s"

    def _scan(self) -> tuple[str, str]:
        """The scan's row filter beyond [start, as_of), and the fine stage's newest event.

        With a window of every type ending at as_of, the rows older than the widest one are read
        only for the slices that need them (by type). The newest event then comes from that widest
        window alone (other rows are a subset): null for a customer silent in it, whose newest
        event the scoring statement looks up."""
        everything = [
            (window, bound)
            for (window, offset), bound in self._bounds.items()
            if offset == 0 and self._bound_types[bound] is None
        ]
        if not everything:
            return "", "max(e.timestamp)"
        widest, widest_bound = max(everything)
        parts = [self._conds[widest_bound]]
        for (window, offset), bound in self._bounds.items():
            if window + offset <= widest:
                continue
            types = self._bound_types[bound]
            typed = "" if types is None else f" AND e.type = ANY({self.param(sorted(types))}::text[])"
            parts.append(f"({self._conds[bound]}{typed})")
        if len(parts) == 1:  # every row scanned is of every type: its newest is the newest
            return "", "max(e.timestamp)"
        return f"AND ({' OR '.join(parts)})", f"max(e.timestamp) FILTER (WHERE {self._conds[widest_bound]})"

    # Fine stage ------------------------------------------------------------------------------

    def _bound(self, window: int, offset: int) -> str:
        key = (window, offset)
        if key not in self._bounds:
            name = f"b{len(self._bounds)}"
            self._bounds[key] = name
            self._bound_types[name] = set()
            self.scan_days = max(self.scan_days, window + offset)
            lo = self.param(self.as_of - timedelta(days=window + offset))
            cond = f"e.timestamp >= {lo}"
            if offset:
                cond += f" AND e.timestamp < {self.param(self.as_of - timedelta(days=offset))}"
            self._conds[name] = cond
        return self._bounds[key]

    def _slice(self, spec, offset: int) -> str:
        """The fine rows of a base spec's window (shifted by `offset`): a filtered count column,
        cnt_<slice>; by type too when the grain has none."""
        bound = self._bound(spec.window, spec.offset + offset)
        every_type = spec.types is None or spec.kind == "types"
        if every_type:
            self._bound_types[bound] = None
        elif self._bound_types[bound] is not None:
            self._bound_types[bound].update(spec.types)
        types = None if every_type or self.type_grain else tuple(spec.types)
        key = (bound, types)
        if key not in self._slices:
            name = bound if types is None else f"{bound}t{len(self._slices)}"
            cond = self._conds[bound]
            if types is not None:
                cond += f" AND e.type = ANY({self.param(list(types))}::text[])"
            self._slices[key] = name
            self._slice_window[name] = (spec.window, spec.offset + offset)
            self._conds[name] = cond
            self.fine.append(f"count(*) FILTER (WHERE {cond}) AS cnt_{name}")
        return self._slices[key]

    def _fine(self, kind: str, slice_: str, *extra) -> str:
        key = (kind, slice_, *extra)
        if key in self._fine_cols:
            return self._fine_cols[key]
        name = f"f{len(self._fine_cols)}"
        cond = self._conds[slice_]
        window, offset = self._slice_window[slice_]
        if kind == "days":
            day0 = self.param((self.as_of - timedelta(days=window + offset)).astimezone(self.tz).date())
            day = f"((e.timestamp AT TIME ZONE %(tz)s)::date - {day0}::date)"
            if window + 1 <= 63:
                self.fine.append(f"bit_or(1::bigint << {day}) FILTER (WHERE {cond}) AS {name}")
            else:
                zeros = self.param("0" * (window + 1))
                self.fine.append(
                    f"bit_or(set_bit({zeros}::varbit, {day}, 1)) FILTER (WHERE {cond}) AS {name}"
                )
        elif kind == "sum":
            prop = self.param(extra[0])
            number = (
                f"CASE WHEN jsonb_typeof(e.properties -> {prop}) = 'number' "
                f"THEN (e.properties ->> {prop})::float8 END"
            )
            self.fine.append(f"sum({number}) FILTER (WHERE {cond}) AS {name}")
        elif kind == "last":
            self.fine.append(f"max(e.timestamp) FILTER (WHERE {cond}) AS {name}")
        self._fine_cols[key] = name
        return name

    # Customer stage ----------------------------------------------------------------------------

    def _aggregate(self, spec, offset: int = 0) -> str:
        """The customer-stage column of a base spec (over its window shifted by `offset`)."""
        bound = self._slice(spec, offset)
        key = (spec.kind, spec.types, bound, spec.prop, spec.unbounded)
        if key in self._aggs:
            return self._aggs[key]
        name = f"a{len(self._aggs)}"
        typed = spec.types is not None and self.type_grain
        types = f" AND type = ANY({self.param(list(spec.types))}::text[])" if typed else ""
        where = f"cnt_{bound} > 0{types}"
        coalesce = True
        if spec.kind == "count":
            expr = f"sum(cnt_{bound}) FILTER (WHERE true{types})"
        elif spec.kind == "active_days":
            days = self._fine("days", bound)
            window = self._slice_window[bound][0]
            cast = "::bit(64)" if window + 1 <= 63 else ""
            expr = f"bit_count(bit_or({days}) FILTER (WHERE {where}){cast})"
        elif spec.kind == "distinct_users":
            self.needs_uid = True
            expr = f"count(DISTINCT uid) FILTER (WHERE {where})"
        elif spec.kind == "types":
            expr = f"count(DISTINCT type) FILTER (WHERE {where})"
        elif spec.kind == "sum":
            expr = f"sum({self._fine('sum', bound, spec.prop)}) FILTER (WHERE {where})"
        elif spec.kind == "days_since":
            expr = f"max({self._fine('last', bound)}) FILTER (WHERE {where})"
            coalesce = False
        else:  # pragma: no cover - validated definitions only
            raise ValueError(spec.kind)
        self.agg.append(f"{expr} AS {name}")
        self.base.append(f"coalesce(a.{name}, 0) AS {name}" if coalesce else f"a.{name} AS {name}")
        self._aggs[key] = name
        return name

    def aggregates_sql(self, ids_filter_e: str = "") -> str:
        """The statement that fills AGGREGATES."""
        return _AGG_SQL.format(
            ids_filter_e=ids_filter_e,
            uid=self.uid,
            type=self.type,
            last_at=self.last_at,
            scan_filter=self.scan_filter,
            grain=", ".join(["1"] + ["2"] * self.type_grain + ["3"] * self.needs_uid),
            fine_columns="".join(f", {c}" for c in self.fine),
            agg_columns="".join(f", {c}" for c in self.agg),
        )

    # Values and curves -------------------------------------------------------------------------

    def _days_since(self, column: str, hi: datetime) -> str:
        return (
            f"greatest(0.0::float8, (extract(epoch FROM {self.param(hi)}::timestamptz) - extract(epoch FROM {column}))"
            f"::float8 / 86400.0::float8)"
        )

    def value(self, spec, offset: int = 0) -> str:
        """The signal's value before rounding, over the base row `t` (float8, null: none)."""
        if spec.kind == "ratio":
            num, den = self.value(spec.num), self.value(spec.den)
            return f"(CASE WHEN ({den}) <> 0.0::float8 THEN ({num}) / ({den}) END)"
        if spec.kind == "change":
            current, previous = self.value(spec.base), self.value(spec.base, offset=spec.base.window)
            if spec.percent_of_previous:
                return f"(CASE WHEN ({previous}) > 0 THEN {_r(f'100.0::float8 * ({current}) / ({previous})')} END)"
            return (
                f"(CASE WHEN ({previous}) <> 0.0::float8 "
                f"THEN 100.0::float8 * (({current}) - ({previous})) / ({previous}) END)"
            )
        if spec.unbounded:
            # No event yet: no recency (greatest() would skip the null and say 0 days). Only the
            # cohorts' values reach here without an event; the scoring rows all have one.
            return f"(CASE WHEN t.last_at IS NOT NULL THEN {self._days_since('t.last_at', self.as_of)} END)"
        column = f"t.{self._aggregate(spec, offset)}"
        if spec.kind == "days_since":
            window = float(spec.window)
            silent = self._days_since(column, self.as_of - timedelta(days=spec.offset + offset))
            return f"(CASE WHEN {column} IS NULL THEN {window!r}::float8 ELSE least({silent}, {window!r}::float8) END)"
        if spec.kind == "active_days":
            return f"least({column}, {int(spec.window)})::float8"
        if spec.absent_when_zero:
            return f"(CASE WHEN {column} > 0 THEN {column}::float8 END)"
        return f"{column}::float8"

    def _points(self, spec, x: str) -> str:
        points = spec.points
        parts = [
            f"CASE WHEN {x} <= {self.param(points[0][0])}::float8 THEN {self.param(points[0][1])}::float8"
        ]
        for (v0, s0), (v1, s1) in zip(points, points[1:], strict=False):
            p_v0, p_s0, p_v1, p_s1 = (self.param(n) for n in (v0, s0, v1, s1))
            # Anchored at the segment's upper end, in this order, like the oracle (the built-ins'
            # documented formulas come out to the last bit: 0 + (30 - d) * 100 / 29 for recency).
            parts.append(
                f"WHEN {x} <= {p_v1}::float8 THEN {p_s1}::float8 + (({p_v1}::float8 - {x}) * "
                f"({p_s0}::float8 - {p_s1}::float8)) / ({p_v1}::float8 - {p_v0}::float8)"
            )
        parts.append(f"ELSE {self.param(points[-1][1])}::float8 END")
        return _clamp(" ".join(parts))

    def _signal(self, index: int, spec) -> None:
        r, v, x, c = f"r{index}", f"v{index}", f"x{index}", f"c{index}"
        self.raw.append(f"{self.value(spec)} AS {r}")
        # A days_since value is shown rounded; its curve reads the exact value, x. Elsewhere the
        # curve reads the value itself (no second copy of it in every row).
        if spec.kind == "days_since":
            self.shown.append(f"{_r(f't.{r}')} AS {v}, t.{r} AS {x}")
            self.stored.append(f"h.signal_values[{index + 1}] AS {v}, NULL::float8 AS {x}")
        else:
            self.shown.append(f"t.{r} AS {v}")
            self.stored.append(f"h.signal_values[{index + 1}] AS {v}")
            x = v
        if spec.curve == "points":
            self.curve.append(f"{self._points(spec, f't.{x}')} AS {c}")
        else:
            # Ranked by binary search in the population's sorted values (width_bucket counts the
            # elements <= its operand), not by window functions: those sorted the population's
            # wide rows once per percentile signal and joined the ranks back. `up` holds the
            # values ascending, `dn` their negations ascending (count(x >= v) = count(-x <= -v)).
            # In the signal's order, rk is rank() (1 + the values strictly before v) and le the
            # values up to and including v's ties: the integers the windows gave.
            up, dn = f"s.up{index}", f"s.dn{index}"
            self.sorted_columns.append(
                f"array_agg(p.{v} ORDER BY p.{v}) FILTER (WHERE p.{v} IS NOT NULL) AS up{index}, "
                f"array_agg(-p.{v} ORDER BY -p.{v}) FILTER (WHERE p.{v} IS NOT NULL) AS dn{index}"
            )
            n = f"coalesce(cardinality({up}), 0)"
            at_most, at_least = f"width_bucket(t.{v}, {up})", f"width_bucket(-t.{v}, {dn})"
            if spec.higher_is_better:
                rk, le = f"{n} - {at_least} + 1", at_most
            else:
                rk, le = f"{n} - {at_most} + 1", at_least
            self.rank_columns.append(
                f"CASE WHEN t.{v} IS NOT NULL THEN {rk} END AS rk{index}, "
                f"CASE WHEN t.{v} IS NOT NULL THEN {le} END AS le{index}, {n} AS n{index}, "
                f"{up}[1] AS mn{index}, {up}[{n}] AS mx{index}"
            )
            spread = f"(t.mx{index} - t.mn{index})"
            minmax = (
                f"100.0::float8 * (t.{v} - t.mn{index}) / {spread}"
                if spec.higher_is_better
                else f"100.0::float8 * (t.mx{index} - t.{v}) / {spread}"
            )
            self.curve.append(
                f"CASE WHEN t.{v} IS NULL THEN NULL WHEN t.n{index} >= {PERCENTILE_MIN} THEN "
                f"{_clamp(f'100.0::float8 * ((t.rk{index} - 1)::float8 + (t.le{index} - t.rk{index})::float8 / 2.0::float8) / (t.n{index} - 1)::float8')} "
                f"WHEN t.mx{index} = t.mn{index} THEN 50.0::float8 ELSE {_clamp(minmax)} END AS {c}"
            )
        prefix = f"s{index}"
        if spec.percent_of_previous:
            # No previous volume: a new or returning customer (recent events) is full marks.
            recent_column = self._aggregate(spec.base)
            if recent_column not in self.carried:
                self.carried.append(recent_column)
            recent = f"t.{recent_column}"
            score = (
                f"CASE WHEN t.{v} IS NULL THEN (CASE WHEN {recent} > 0 THEN 100.0::float8 ELSE 0.0::float8 END) "
                f"ELSE {_r(f't.{c}', nonnegative=True)} END"
            )
        else:
            score = f"CASE WHEN t.{v} IS NOT NULL THEN {_r(f't.{c}', nonnegative=True)} END"
        self.scores.append(f"t.{v} AS {prefix}_value, {score} AS {prefix}_score")


# The event aggregates alone first: a CREATE TABLE AS may run its SELECT in parallel.
_AGG_SQL = f"""
CREATE TEMP TABLE "{AGGREGATES}" ON COMMIT DROP AS
WITH fine AS (
    -- One hashed pass at (customer[, type][, user]) grain: far fewer rows than events, and the
    -- per-customer distinct counts below then run over those rows, not over the events. A
    -- column the grain does not need is a constant null, left out of the grouping.
    SELECT e.customer_id, {{type}} AS type, {{uid}} AS uid{{fine_columns}},
           {{last_at}} AS last_at
    FROM events_event e
    WHERE e.workspace_id = %(ws)s AND e.timestamp >= %(start)s AND e.timestamp < %(as_of)s
          {{ids_filter_e}} {{scan_filter}}
    GROUP BY {{grain}}
)
SELECT customer_id{{agg_columns}}, max(last_at) AS last_at FROM fine GROUP BY customer_id
"""  # noqa: S608

# Constants and SQL snippets only are interpolated; every value is a query parameter.
_SCORE_SQL = f"""
CREATE TEMP TABLE "{SCORED}" ON COMMIT DROP AS
WITH scope AS (
    SELECT c.id AS customer_id, coalesce(c.churned_at <= %(as_of)s, false) AS churned
    FROM customers_customer c
    WHERE c.workspace_id = %(ws)s AND c.deleted_at IS NULL {{ids_filter_c}}
),
base AS (
    SELECT s.customer_id, {{base_columns}},
           -- The window's newest event is the newest ever; only the silent ones need a probe
           -- of the (customer, -timestamp) index (COALESCE evaluates it only when needed).
           coalesce(a.last_at, {_newest_event_before_as_of("s.customer_id")}) AS last_at
    FROM scope s LEFT JOIN "{{aggregates}}" a ON a.customer_id = s.customer_id OFFSET 0
),
-- OFFSET 0 keeps each level a subquery whose columns are computed once per row: flattened, the
-- planner would substitute each level's columns into every expression of the next that uses
-- them, and _r repeats its argument. MATERIALIZED only where a level is read twice.
raw AS (
    SELECT t.*, {{raw_columns}} FROM base t WHERE t.last_at IS NOT NULL OFFSET 0
),
shown AS MATERIALIZED (
    SELECT t.customer_id{{carried_columns}}, {{shown_columns}} FROM raw t
),
-- The percentile curves rank over the population: this computation's customers and, when it
-- rescores only some, the others' stored values of the same model version.
population AS (
    SELECT * FROM shown {{others}}
),{{sorted_cte}}
-- OFFSET 0: each rank is computed once, not once per use in the curves.
ranked AS (
    SELECT t.*{{rank_columns}} FROM shown t {{sorted_join}} OFFSET 0
),
ev AS (
    SELECT t.*, {{curve_columns}} FROM ranked t OFFSET 0
),
-- Each customer's event signals (value and score; absent: null), rounded once for both paths.
curves AS MATERIALIZED (
    SELECT t.customer_id,
           t.customer_id IN {_WITH_EXTERNAL_SIGNAL} AS has_external,
           {{score_columns}}
    FROM ev t
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
    SELECT s.customer_id, s.churned,
           -- At most 100: half-up rounded contributions near full marks can add up to 100.0n.
           CASE WHEN c.present > 0 THEN least({_r("c.score_sum")}, 100.0::float8) END AS score,
           CASE WHEN c.present > 0 AND %(total_weight)s > 0
                THEN {_r("c.present / %(total_weight)s", 4)}::float8 ELSE 0.0 END AS confidence,
           coalesce(c.signals::jsonb, '[]'::jsonb) AS signals, {{event_column_names}}
    FROM scope s LEFT JOIN (
        SELECT customer_id, present, score_sum, signals, {{event_column_names}} FROM composite
        UNION ALL
        SELECT customer_id, present, score_sum, signals, {{event_column_names}} FROM wide
    ) c ON c.customer_id = s.customer_id
)
SELECT customer_id, score, confidence, signals, {{event_arrays}},
       CASE WHEN churned THEN 'churned' WHEN score IS NULL THEN 'unknown'
            WHEN score >= %(healthy)s THEN 'healthy'
            WHEN score < %(at_risk)s THEN 'at_risk' ELSE 'neutral' END AS status
FROM scored
"""  # noqa: S608


_PART_EXPR = {
    "value": "value_f",
    "score": "score",
    "weight": "weight",
    "contribution": "contribution::float8",
}
PARTS = ("value", "score", "weight", "contribution")


def _composite_snippets(keys: list[str]) -> dict[str, str]:
    """The composite's per-signal SQL for signals s0..sN (keys in key order; each key is a
    parameter k_s{i}, each weight w_s{i})."""
    prefixes = [f"s{index}" for index in range(len(keys))]
    event_columns = ",\n           ".join(
        f"max({_PART_EXPR[part]}) FILTER (WHERE is_event AND key = %(k_{prefix})s) AS {prefix}_{part}"
        for prefix in prefixes
        for part in PARTS
    )
    names = ", ".join(f"{prefix}_{part}" for prefix in prefixes for part in PARTS)
    values = ", ".join(f"(%(k_{prefix})s::text, c.{prefix}_value, c.{prefix}_score)" for prefix in prefixes)
    # The one-row form sums in key order too (COLLATE "C" = Python's str order). An absent
    # signal adds 0.0, which leaves a non-negative float sum unchanged: x + 0.0 == x.
    present = (
        " + ".join(
            f"(CASE WHEN c.{prefix}_score IS NOT NULL THEN %(w_{prefix})s::float8 ELSE 0.0::float8 END)"
            for prefix in prefixes
        )
        or "0.0::float8"
    )
    contributions = ", ".join(
        f"CASE WHEN w.{prefix}_score IS NOT NULL THEN %(w_{prefix})s::float8 END AS {prefix}_weight, "
        f"CASE WHEN w.{prefix}_score IS NOT NULL THEN (CASE WHEN w.present > 0 "
        f"THEN {_r(f'%(w_{prefix})s::float8 * w.{prefix}_score / w.present', nonnegative=True)} ELSE 0.0::float8 END) "
        f"END AS {prefix}_contribution"
        for prefix in prefixes
    )
    score_sum = " + ".join(f"coalesce({prefix}_contribution, 0.0::float8)" for prefix in prefixes)
    arrays = ", ".join(
        f"ARRAY[{', '.join(f'{prefix}_{part}' for prefix in prefixes)}]::float8[] AS signal_{part}s"
        for part in ("value", "score", "contribution")
    )
    return {
        "event_arrays": arrays,
        "event_columns": event_columns,
        "event_column_names": names,
        "event_values": values,
        "wide_order": f"s0..s{len(keys) - 1}",
        "wide_present": present,
        "wide_contributions": contributions,
        "wide_score_sum": score_sum or "0.0::float8",
    }


# One metric's values alone (the cohorts): the scoring SQL up to the values, no curve, no composite.
# Unlike a score, a metric has a value for every customer that existed at as_of: created by then,
# or with an event or an external signal at or before it (imported history). One with no event
# yet counts 0 events and is silent for a windowed days_since; its recency has no value.
VALUES = "health_metric_values_tmp"
_VALUES_SQL = f"""
CREATE TEMP TABLE "{VALUES}" ON COMMIT DROP AS
WITH base AS (
    SELECT c.id AS customer_id, c.created_at <= %(as_of)s AS created{{base_columns}},
           coalesce(a.last_at, {_newest_event_before_as_of("c.id")}) AS last_at
    FROM customers_customer c LEFT JOIN "{{aggregates}}" a ON a.customer_id = c.id
    WHERE c.workspace_id = %(ws)s AND c.deleted_at IS NULL OFFSET 0
),
raw AS (
    SELECT t.*, {{raw_columns}} FROM base t
    WHERE t.last_at IS NOT NULL OR t.created
          OR t.customer_id IN {_WITH_EXTERNAL_SIGNAL}
    OFFSET 0
)
SELECT t.customer_id, {{shown_columns}} FROM raw t
"""  # noqa: S608


def metric_values_as_of(cursor, *, workspace_id: str, spec, as_of: datetime) -> str:
    """Fill a temporary table (customer_id, v0 the value, x0) with one signal's values as of
    `as_of`, from one grouped pass over that signal's windows only; returns the table's name.
    Call inside a transaction (the table drops at commit)."""
    tz = timezone.get_current_timezone()
    plan = _Plan([spec], as_of=as_of, tz=tz, scan_floor=0)
    params = {**plan.params, "ws": workspace_id, "as_of": as_of, "tz": str(tz)}
    params["start"] = as_of - timedelta(days=max(plan.scan_days, 1))
    cursor.execute(f'DROP TABLE IF EXISTS "{VALUES}", "{AGGREGATES}"')
    # As for a full rescore (see rescore_set_based): a parallel scan, JIT for it only.
    cursor.execute("SET LOCAL parallel_tuple_cost = 0.001")
    cursor.execute("SET LOCAL jit = on")
    cursor.execute(plan.aggregates_sql(), params)
    cursor.execute("RESET parallel_tuple_cost")
    cursor.execute("SET LOCAL jit = off")
    cursor.execute(
        _VALUES_SQL.format(
            base_columns="".join(f", {c}" for c in plan.base),
            aggregates=AGGREGATES,
            raw_columns=", ".join(plan.raw),
            shown_columns=", ".join(plan.shown),
        ),
        params,
    )
    cursor.execute(f'DROP TABLE "{AGGREGATES}"')
    return VALUES


def _catalog(model: HealthModel, specs) -> str:
    """Signal definitions + the model's weights, as one JSON parameter (weight_json keeps the
    Python float's JSON form, so stored breakdowns decode to the same values)."""
    definitions = {key: (d.category, d.label, d.unit) for key, d in CATALOG.items()}
    definitions.update({spec.key: (spec.category, spec.label, spec.unit) for spec in specs})
    keys = set(definitions) | set(model.weights)
    rows = []
    for key in sorted(keys):
        definition = definitions.get(key)
        weight = float(model.weights.get(key, 0.0))
        rows.append(
            {
                "key": key,
                "category": definition[0] if definition else None,
                "label": definition[1] if definition else None,
                "unit": definition[2] if definition else None,
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
    read_scored: Callable | None = None,
):
    """health.rescore.rescore on PostgreSQL; returns the number of customers scored, or, given
    `read_scored`, what it returns when called with the cursor while the scored table (SCORED:
    customer_id, score, status, confidence, signals and the ARRAY_COLUMNS) still exists."""
    timer = _Timer()
    tz = timezone.get_current_timezone()
    specs = model_specs(model.metrics)
    plan = _Plan(specs, as_of=as_of, tz=tz)
    start = as_of - timedelta(days=plan.scan_days)
    keys = [spec.key for spec in specs]
    params = {
        **plan.params,
        "ws": workspace_id,
        "as_of": as_of,
        "start": start,
        "tz": str(tz),
        "computed_at": iso(as_of),
        "catalog": _catalog(model, specs),
        "total_weight": float(sum(weight for weight in model.weights.values() if weight > 0)),
        "healthy": float(model.healthy_threshold),
        "at_risk": float(model.at_risk_threshold),
        "version": model.version,
        **{f"w_s{index}": float(model.weights.get(key, 0.0)) for index, key in enumerate(keys)},
        **{f"k_s{index}": key for index, key in enumerate(keys)},
        "ids": ids,
    }
    ids_filter_e = "AND e.customer_id = ANY(%(ids)s)" if ids is not None else ""
    others = ""
    if ids is not None and plan.sorted_columns:
        # The other customers' stored values (same model version), for the percentile ranks.
        stored = ", ".join(plan.stored)
        nulls = "".join("NULL, " for _ in plan.carried)
        others = (
            f"UNION ALL SELECT h.customer_id, {nulls}"  # noqa: S608 (fixed SQL; values are parameters)
            f'{stored} FROM "{CustomerHealth._meta.db_table}" h '
            "WHERE h.workspace_id = %(ws)s AND h.model_version = %(version)s AND NOT (h.customer_id = ANY(%(ids)s))"
        )
    sql = _SCORE_SQL.format(
        ids_filter_c="AND c.id = ANY(%(ids)s)" if ids is not None else "",
        aggregates=AGGREGATES,
        base_columns=", ".join(plan.base),
        raw_columns=", ".join(plan.raw),
        carried_columns="".join(f", t.{name}" for name in plan.carried),
        shown_columns=", ".join(plan.shown),
        others=others,
        sorted_cte=(
            f"\nsorted AS MATERIALIZED (SELECT {', '.join(plan.sorted_columns)} FROM population p),"  # noqa: S608
            if plan.sorted_columns
            else ""
        ),
        rank_columns="".join(f", {columns}" for columns in plan.rank_columns),
        sorted_join="CROSS JOIN sorted s" if plan.sorted_columns else "",
        curve_columns=", ".join(plan.curve),
        score_columns=", ".join(plan.scores),
        **_composite_snippets(keys),
    )
    agg_sql = plan.aggregates_sql(ids_filter_e)
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
        cursor.execute(agg_sql, params)
        # The scoring statement joins the aggregates to more per-signal ranks as metrics are
        # added; without statistics on the fresh table the planner's row guesses were off by
        # 10^50 (a few ms for 100,000 rows).
        cursor.execute(f'ANALYZE "{AGGREGATES}"')
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
        if read_scored is not None:
            count = read_scored(cursor)
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
               h.score, h.status, h.notified_score, h.notified_status, {", ".join(f"t.{c}" for c in ARRAY_COLUMNS)}
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
                               signals, computed_at, notified_score, notified_status, {", ".join(ARRAY_COLUMNS)})
        SELECT customer_id, %(ws)s, score, status, confidence, %(version)s, signals, %(as_of)s,
               score, status, {", ".join(ARRAY_COLUMNS)}
        FROM "{SCORED}"
        ON CONFLICT (customer_id) DO UPDATE SET
            score = EXCLUDED.score, status = EXCLUDED.status, confidence = EXCLUDED.confidence,
            model_version = EXCLUDED.model_version, signals = EXCLUDED.signals,
            computed_at = EXCLUDED.computed_at,
            {", ".join(f"{c} = EXCLUDED.{c}" for c in ARRAY_COLUMNS)},
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
            {
                "signals": signals,
                "computed_at": as_of,
                "workspace_id": workspace_id,
                "model_version": model.version,
                **dict(zip(ARRAY_COLUMNS, event, strict=True)),
            }
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
