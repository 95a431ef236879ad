"""Workspace-defined metrics, and the five built-in event signals as predefined metrics.

A metric is a signal computed from the events index by health.rescore_sql, in the same grouped
pass as every other event signal (one scan per rescore). Its definition is validated here; a
model version (HealthModel.metrics) keeps the definitions it scored with, so a version is
reproducible after its metrics change.

Definitions (the API's `metric` object, without id/timestamps):

- `key`: `custom.<name>`, name `[a-z0-9_]{1,60}`; `label`; `category` (usage, engagement,
  billing, support).
- `aggregate` over the events in the window [as_of - window_days, as_of), `event_types` (a list,
  or null for every type):
  - `count`: events; `active_days`: distinct UTC days (at most window_days); `distinct_users`:
    distinct `properties.user_id`; `sum`: the sum of the numeric `property` (non-numeric values
    count as nothing, no matching event is 0); `days_since`: days since the last matching event,
    at most window_days (no matching event in the window is window_days).
  - derived: `ratio` = numerator / denominator (null when the denominator is 0); `change` = the
    percent change of `metric` against the same window just before it,
    100 * (current - previous) / previous (null when previous is 0). Their operands are
    aggregate metrics: custom ones or the built-in event signals, never a derived metric (so
    nothing can refer to itself).
  A null value leaves the signal absent for that customer (its weight is left out).
- `higher_is_better` (default true) and `curve`:
  - `percentile` (default): the customer's percentile rank among the workspace's customers with a
    value, 100 * (mean rank - 1) / (n - 1), ties sharing their mean rank, the worst value ranking
    1; all equal (or n = 1) is 50. With fewer than PERCENTILE_MIN customers with a value it is
    min-max instead: 100 * (v - min) / (max - min) (reversed when lower is better).
  - `points`: `[{"value", "score"}, ...]` with increasing values, piecewise linear between them
    and clamped at the ends (`higher_is_better` is then only informative: the points say it).
  Scores are rounded to 2 decimals (health.rounding.round_half_up).

The built-ins are the same machinery with points curves equal to the documented formulas of
health.signals, plus the details those formulas have (see BUILTIN_SPECS).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from health.signals import CATALOG, CATEGORIES, EVENT_SIGNAL_KEYS

KEY_RE = re.compile(r"^custom\.[a-z0-9_]{1,60}$")
BASE_AGGREGATES = ("count", "active_days", "distinct_users", "sum", "days_since")
DERIVED_AGGREGATES = ("ratio", "change")
AGGREGATES = BASE_AGGREGATES + DERIVED_AGGREGATES
CURVES = ("percentile", "points")
MAX_METRICS = 50
MAX_WINDOW_DAYS = 365
MAX_EVENT_TYPES = 50
MAX_POINTS = 20
PERCENTILE_MIN = 20
UNITS = {
    "count": "events",
    "active_days": "days",
    "distinct_users": "users",
    "sum": "",
    "days_since": "days",
    "ratio": "",
    "change": "%",
}
FIELDS = (
    "key",
    "label",
    "category",
    "aggregate",
    "property",
    "event_types",
    "window_days",
    "numerator",
    "denominator",
    "metric",
    "higher_is_better",
    "curve",
    "points",
)


class MetricError(Exception):
    """Invalid metric input: `errors` lists (param, message), the first one names the field."""

    def __init__(self, errors: list[tuple[str, str]]):
        super().__init__(errors[0][1])
        self.errors = errors


# --- Resolved specifications (what the SQL generator and the oracle compute) -------------------


@dataclass(frozen=True)
class Spec:
    key: str
    label: str
    category: str
    unit: str
    kind: str  # an aggregate, or the built-ins' own "types" (distinct event types)
    types: tuple[str, ...] | None = None
    window: int = 30
    offset: int = 0  # the window ends `offset` days before as_of (a change's previous window)
    prop: str | None = None
    higher_is_better: bool = True
    curve: str = "percentile"
    points: tuple[tuple[float, float], ...] = ()
    num: Spec | None = None
    den: Spec | None = None
    base: Spec | None = None
    # The built-ins' details: a value at most `cap`; absent when the value is 0; the trend's value
    # as 100 * current / previous and its score when that is null; days since the last event ever.
    cap: float | None = None
    absent_when_zero: bool = False
    percent_of_previous: bool = False
    unbounded: bool = False
    builtin: bool = field(default=False, compare=False)

    @property
    def derived(self) -> bool:
        return self.kind in DERIVED_AGGREGATES


def _builtin(key: str, **kwargs) -> Spec:
    definition = CATALOG[key]
    return Spec(
        key=key,
        label=definition.label,
        category=definition.category,
        unit=definition.unit,
        curve="points",
        builtin=True,
        **kwargs,
    )


BUILTIN_SPECS: dict[str, Spec] = {
    spec.key: spec
    for spec in (
        _builtin(
            "usage.active_days_30d",
            kind="active_days",
            window=30,
            cap=30.0,
            points=((0.0, 0.0), (20.0, 100.0)),
        ),
        _builtin(
            "usage.volume_trend_14d",
            kind="change",
            percent_of_previous=True,
            base=Spec(key="", label="", category="usage", unit="", kind="count", window=14),
            points=((50.0, 0.0), (100.0, 100.0)),
        ),
        _builtin("usage.breadth_30d", kind="types", window=30, points=((0.0, 0.0), (5.0, 100.0))),
        _builtin(
            "engagement.distinct_users_30d",
            kind="distinct_users",
            window=30,
            absent_when_zero=True,
            points=((0.0, 0.0), (3.0, 100.0)),
        ),
        _builtin(
            "engagement.recency_days",
            kind="days_since",
            window=30,
            unbounded=True,
            higher_is_better=False,
            points=((1.0, 100.0), (30.0, 0.0)),
        ),
    )
}
assert tuple(sorted(BUILTIN_SPECS)) == tuple(sorted(EVENT_SIGNAL_KEYS))


def _spec_of(definition: dict, *, operand_of: dict[str, dict]) -> Spec:
    aggregate = definition["aggregate"]
    common = {
        "key": definition["key"],
        "label": definition["label"],
        "category": definition["category"],
        "unit": UNITS[aggregate],
        "kind": aggregate,
        "higher_is_better": definition.get("higher_is_better", True),
        "curve": definition.get("curve") or "percentile",
        "points": tuple((float(p["value"]), float(p["score"])) for p in definition.get("points") or ()),
    }
    if aggregate == "ratio":
        return Spec(
            **common,
            num=_operand(definition["numerator"], operand_of),
            den=_operand(definition["denominator"], operand_of),
        )
    if aggregate == "change":
        return Spec(**common, base=_operand(definition["metric"], operand_of))
    types = definition.get("event_types")
    return Spec(
        **common,
        types=None if types is None else tuple(types),
        window=int(definition["window_days"]),
        prop=definition.get("property"),
    )


def _operand(key: str, operand_of: dict[str, dict]) -> Spec:
    if key in BUILTIN_SPECS:
        return BUILTIN_SPECS[key]
    return _spec_of(operand_of[key], operand_of=operand_of)


def model_specs(metrics: list[dict] | None) -> list[Spec]:
    """The event signals of a model version (its `metrics` plus the built-ins), in key order:
    the order of the per-signal arrays stored on CustomerHealth."""
    by_key = {definition["key"]: definition for definition in metrics or ()}
    specs = list(BUILTIN_SPECS.values()) + [_spec_of(d, operand_of=by_key) for d in by_key.values()]
    return sorted(specs, key=lambda spec: spec.key)


def signal_keys(metrics: list[dict] | None) -> list[str]:
    return sorted([*BUILTIN_SPECS, *(definition["key"] for definition in metrics or ())])


# --- Validation ----------------------------------------------------------------------------------


def _is_number(value) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(float(value))
    except OverflowError:  # a JSON integer beyond float range
        return False


def _has_nul(value) -> bool:
    # PostgreSQL's jsonb refuses \u0000: refuse it here, as a 400.
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, list):
        return any(_has_nul(item) for item in value)
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    return False


def _is_int(value) -> bool:
    return not isinstance(value, bool) and isinstance(value, int)


def validate(data: dict, *, others: dict[str, dict], current: dict | None = None) -> dict:
    """A clean definition from API input (`current` + `data` for an update), or MetricError.

    `others` are the workspace's other metrics (key -> definition), for the operands."""
    if not isinstance(data, dict):
        raise MetricError([("body", "The request body must be a JSON object.")])
    errors: list[tuple[str, str]] = []
    unknown = [name for name in data if name not in FIELDS]
    errors += [(name, f"Received unknown parameter: {name}.") for name in unknown]
    errors += [
        (name, f"{name} must not contain NUL characters (\\u0000).") for name in data if _has_nul(data[name])
    ]
    if errors:
        raise MetricError(errors)
    merged = {**(current or {}), **{k: v for k, v in data.items() if k in FIELDS}}
    if current is not None and "key" in data:
        errors.append(("key", "key cannot be changed; create a new metric instead."))
    key = merged.get("key")
    if current is None:
        if key is None:
            errors.append(("key", "key is required."))
        elif not isinstance(key, str) or not KEY_RE.match(key):
            errors.append(("key", "key must be custom.<name>, the name [a-z0-9_] and at most 60 characters."))
    label = merged.get("label")
    if not isinstance(label, str) or not label.strip() or len(label) > 200:
        errors.append(("label", "label is required: a string of 1 to 200 characters."))
    if merged.get("category") not in CATEGORIES:
        errors.append(("category", f"category must be one of: {', '.join(CATEGORIES)}."))
    aggregate = merged.get("aggregate")
    if aggregate not in AGGREGATES:
        errors.append(("aggregate", f"aggregate must be one of: {', '.join(AGGREGATES)}."))
    # Fields that do not apply to the aggregate must be null; a PATCH that changes the aggregate
    # may clear them by sending null.
    applies = {
        "property": aggregate == "sum",
        "event_types": aggregate in BASE_AGGREGATES,
        "window_days": aggregate in BASE_AGGREGATES,
        "numerator": aggregate == "ratio",
        "denominator": aggregate == "ratio",
        "metric": aggregate == "change",
    }
    if aggregate in AGGREGATES:
        for name, needed in applies.items():
            if not needed and merged.get(name) is not None:
                errors.append(
                    (name, f"{name} does not apply to aggregate {aggregate}; leave it out or null.")
                )
    if applies["property"]:
        prop = merged.get("property")
        if not isinstance(prop, str) or not prop or len(prop) > 200:
            errors.append(
                ("property", "property is required for sum: a property name of 1 to 200 characters.")
            )
    if applies["event_types"]:
        types = merged.get("event_types")
        if types is not None and (
            not isinstance(types, list)
            or not 1 <= len(types) <= MAX_EVENT_TYPES
            or not all(isinstance(t, str) and 1 <= len(t) <= 100 for t in types)
            or len(set(types)) != len(types)
        ):
            errors.append(
                (
                    "event_types",
                    f"event_types must be null or a list of 1 to {MAX_EVENT_TYPES} distinct event types "
                    "(strings of 1 to 100 characters).",
                )
            )
    if applies["window_days"]:
        window = merged.get("window_days")
        if not _is_int(window) or not 1 <= window <= MAX_WINDOW_DAYS:
            errors.append(
                ("window_days", f"window_days is required: an integer from 1 to {MAX_WINDOW_DAYS}.")
            )
    for name in ("numerator", "denominator", "metric"):
        if not applies[name]:
            continue
        operand = merged.get(name)
        if operand is None:
            errors.append((name, f"{name} is required for {aggregate}: a metric key."))
        elif operand == key:
            errors.append((name, f"{name} may not refer to the metric itself."))
        elif operand in BUILTIN_SPECS:
            builtin = BUILTIN_SPECS[operand]
            if builtin.derived:
                errors.append((name, f"{name} must be an aggregate metric; {operand} is itself a change."))
            elif name == "metric" and builtin.unbounded:
                errors.append(
                    (name, f"{operand} has no window to compare; define a days_since metric and use that.")
                )
        elif not isinstance(operand, str) or operand not in others:
            errors.append((name, f"{name}: no such metric: {operand!r}."))
        elif others[operand]["aggregate"] in DERIVED_AGGREGATES:
            errors.append(
                (name, f"{name} must be an aggregate metric, not a {others[operand]['aggregate']}.")
            )
    higher = merged.get("higher_is_better", True)
    if not isinstance(higher, bool):
        errors.append(("higher_is_better", "higher_is_better must be true or false."))
    curve = merged.get("curve") or "percentile"
    points = merged.get("points")
    if curve not in CURVES:
        errors.append(("curve", f"curve must be one of: {', '.join(CURVES)}."))
    elif curve == "points":
        if not _valid_points(points):
            errors.append(
                (
                    "points",
                    f"points must be 2 to {MAX_POINTS} objects {{value, score}} with increasing values "
                    "and scores from 0 to 100.",
                )
            )
    elif points is not None:
        errors.append(("points", "points applies to curve points only; leave it out or null."))
    if errors:
        raise MetricError(errors)
    clean = {name: merged.get(name) for name in FIELDS}
    clean["higher_is_better"] = higher
    clean["curve"] = curve
    clean["label"] = label
    if curve == "points":
        clean["points"] = [{"value": float(p["value"]), "score": float(p["score"])} for p in points]
    return clean


def _valid_points(points) -> bool:
    if not isinstance(points, list) or not 2 <= len(points) <= MAX_POINTS:
        return False
    values = []
    for point in points:
        if not isinstance(point, dict) or set(point) != {"value", "score"}:
            return False
        if not _is_number(point["value"]) or not _is_number(point["score"]) or not 0 <= point["score"] <= 100:
            return False
        values.append(point["value"])
    return all(a < b for a, b in zip(values, values[1:], strict=False))


def dependants(key: str, definitions: dict[str, dict]) -> list[str]:
    """The metrics whose operand is `key`."""
    return sorted(
        other
        for other, definition in definitions.items()
        if key in (definition.get("numerator"), definition.get("denominator"), definition.get("metric"))
    )
