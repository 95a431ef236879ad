"""The reference implementation of rescoring, in Python: the oracle of the parity tests.

This was the portable production path beside health.rescore_sql; it is test code now. It
aggregates a workspace's events in grouped ORM queries, applies the documented curves of
health.signals and the score math of health.scoring one customer at a time, and writes with the
ORM. tests/health/test_rescore_parity.py runs it and the production (set-based SQL) rescore from
the same state and compares every stored column, snapshot and webhook.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from django.db import transaction
from django.db.models import Count, F, OuterRef, Q, Subquery
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import TruncDate
from django.utils import timezone

from customers.models import Customer
from events.models import Event
from health import generation
from health.metrics import PERCENTILE_MIN, Spec, model_specs
from health.models import ARRAY_COLUMNS, CustomerHealth, ExternalSignal, HealthModel, HealthSnapshot
from health.rescore import CurrentRow, _notifications, _publish
from health.rounding import round_half_up
from health.scoring import signal_object
from health.signals import EVENTS_SOURCE

WINDOW_DAYS = 30
TREND_DAYS = 14


# --- The documented curves (health.signals) ------------------------------------------------------


@dataclass(frozen=True)
class EventAggregates:
    """One customer's event aggregates before the computation time."""

    active_days: int = 0
    recent_14d: int = 0
    previous_14d: int = 0
    types_30d: int = 0
    users_30d: int = 0
    last_event_at: datetime | None = None


def _round2(value: float) -> float:
    return round_half_up(value, 2)


def _capped(value: float) -> float:
    return _round2(max(0.0, min(100.0, value)))


def event_signals(agg: EventAggregates, as_of: datetime) -> list[dict]:
    """The event signals of one customer as `{key, value, score}`; empty if it has no events."""
    if agg.last_event_at is None:
        return []
    signals = [
        {"key": "usage.active_days_30d", "value": float(min(agg.active_days, 30))},
        _trend(agg.recent_14d, agg.previous_14d),
        {"key": "usage.breadth_30d", "value": float(agg.types_30d)},
    ]
    signals[0]["score"] = _capped(100.0 * min(agg.active_days, 30) / 20.0)
    signals[2]["score"] = _capped(100.0 * agg.types_30d / 5.0)
    if agg.users_30d > 0:
        signals.append(
            {
                "key": "engagement.distinct_users_30d",
                "value": float(agg.users_30d),
                "score": _capped(100.0 * agg.users_30d / 3.0),
            }
        )
    days = max(0.0, (as_of - agg.last_event_at).total_seconds() / 86400.0)
    signals.append({"key": "engagement.recency_days", "value": _round2(days), "score": recency_score(days)})
    return signals


def recency_score(days: float) -> float:
    if days <= 1.0:
        return 100.0
    return _capped(100.0 * (30.0 - days) / 29.0)


def _trend(recent: int, previous: int) -> dict:
    if previous == 0:
        return {"key": "usage.volume_trend_14d", "value": None, "score": 100.0 if recent > 0 else 0.0}
    percent = _round2(100.0 * recent / previous)
    return {"key": "usage.volume_trend_14d", "value": percent, "score": _capped(2.0 * (percent - 50.0))}


# --- The score math (health.scoring) ------------------------------------------------------------


@dataclass(frozen=True)
class ScoreResult:
    score: float | None
    confidence: float
    signals: list[dict]  # catalog fields + value, score, weight, contribution, source, computed_at


def compute_score(signals: list[dict], weights: dict[str, float]) -> ScoreResult:
    """`signals` are signal objects; returns them sorted by key with weight and contribution."""
    total_weight = sum(weight for weight in weights.values() if weight > 0)
    ordered = sorted(signals, key=lambda item: item["key"])
    present = sum(float(weights.get(signal["key"], 0.0)) for signal in ordered)
    breakdown = []
    score_sum = 0.0
    for signal in ordered:
        weight = float(weights.get(signal["key"], 0.0))
        contribution = round_half_up(weight * signal["score"] / present, 2) if present > 0 else 0.0
        score_sum += contribution
        breakdown.append({**signal, "weight": weight, "contribution": contribution})
    if present <= 0:
        return ScoreResult(score=None, confidence=0.0, signals=breakdown)
    confidence = round_half_up(present / total_weight, 4) if total_weight > 0 else 0.0
    return ScoreResult(
        score=min(round_half_up(score_sum, 2), 100.0), confidence=confidence, signals=breakdown
    )


# --- Aggregation and the rescore ----------------------------------------------------------------


def event_aggregates(
    *, workspace_id: str, as_of: datetime, customer_ids: list[str] | None = None
) -> dict[str, EventAggregates]:
    """Per-customer aggregates of the events before `as_of`, for every live customer in scope."""
    window = Event.objects.filter(
        workspace_id=workspace_id,
        timestamp__gte=as_of - timedelta(days=WINDOW_DAYS),
        timestamp__lt=as_of,
    )
    if customer_ids is not None:
        window = window.filter(customer_id__in=customer_ids)
    recent_start = as_of - timedelta(days=TREND_DAYS)
    previous_start = as_of - timedelta(days=2 * TREND_DAYS)
    rows = (
        window.values("customer_id")
        .order_by()
        .annotate(
            active_days=Count(TruncDate("timestamp"), distinct=True),
            recent=Count("id", filter=Q(timestamp__gte=recent_start)),
            previous=Count("id", filter=Q(timestamp__lt=recent_start, timestamp__gte=previous_start)),
            types=Count("type", distinct=True),
            users=Count(KeyTextTransform("user_id", "properties"), distinct=True),
        )
    )
    windowed = {row["customer_id"]: row for row in rows}
    customers = Customer.objects.filter(workspace_id=workspace_id)
    if customer_ids is not None:
        customers = customers.filter(pk__in=customer_ids)
    last_event = Event.objects.filter(customer_id=OuterRef("pk"), timestamp__lt=as_of).order_by("-timestamp")
    result: dict[str, EventAggregates] = {}
    for customer_id, last_at in customers.annotate(
        last_at=Subquery(last_event.values("timestamp")[:1])
    ).values_list("pk", F("last_at")):
        row = windowed.get(customer_id)
        if row is None or last_at is None:
            result[customer_id] = EventAggregates(last_event_at=last_at)
            continue
        result[customer_id] = EventAggregates(
            active_days=row["active_days"],
            recent_14d=row["recent"],
            previous_14d=row["previous"],
            types_30d=row["types"],
            users_30d=row["users"],
            last_event_at=last_at,
        )
    return result


# --- Workspace metrics (health.metrics): the generic engine every event signal goes through -----


@dataclass(frozen=True)
class _Event:
    type: str
    timestamp: datetime
    properties: dict


def _uid(properties: dict):
    # properties ->> 'user_id': a JSON string as itself, null or missing as no user.
    value = properties.get("user_id")
    if value is None:
        return None
    return value if isinstance(value, str) else str(value)


class MetricEngine:
    """One customer's event signals per health.metrics, the Python way (events in memory)."""

    def __init__(self, events: list[_Event], last_at: datetime | None, as_of: datetime, tz) -> None:
        self.events = events
        self.last_at = last_at
        self.as_of = as_of
        self.tz = tz

    def _matching(self, spec: Spec, offset: int) -> list[_Event]:
        lo = self.as_of - timedelta(days=spec.window + spec.offset + offset)
        hi = self.as_of - timedelta(days=spec.offset + offset)
        return [
            e for e in self.events if lo <= e.timestamp < hi and (spec.types is None or e.type in spec.types)
        ]

    @staticmethod
    def _silent(hi: datetime, last: datetime) -> float:
        return max(0.0, (hi - last).total_seconds() / 86400.0)

    def value(self, spec: Spec, offset: int = 0) -> float | None:
        if spec.kind == "ratio":
            num, den = self.value(spec.num), self.value(spec.den)
            return None if den is None or den == 0.0 or num is None else num / den
        if spec.kind == "change":
            current, previous = self.value(spec.base), self.value(spec.base, offset=spec.base.window)
            if spec.percent_of_previous:
                return round_half_up(100.0 * current / previous, 2) if previous > 0 else None
            if previous is None or previous == 0.0 or current is None:
                return None
            return 100.0 * (current - previous) / previous
        if spec.unbounded:
            return self._silent(self.as_of, self.last_at)
        events = self._matching(spec, offset)
        if spec.kind == "count":
            return float(len(events))
        if spec.kind == "active_days":
            days = {e.timestamp.astimezone(self.tz).date() for e in events}
            return float(min(len(days), spec.window))
        if spec.kind == "distinct_users":
            users = len({_uid(e.properties) for e in events} - {None})
            return None if spec.absent_when_zero and users == 0 else float(users)
        if spec.kind == "types":
            return float(len({e.type for e in events}))
        if spec.kind == "sum":
            total = 0.0
            for e in events:
                amount = e.properties.get(spec.prop)
                if isinstance(amount, (int, float)) and not isinstance(amount, bool):
                    total += float(amount)
            return total
        if spec.kind == "days_since":
            if not events:
                return float(spec.window)
            hi = self.as_of - timedelta(days=spec.offset + offset)
            return min(self._silent(hi, max(e.timestamp for e in events)), float(spec.window))
        raise ValueError(spec.kind)


def points_curve(points, x: float) -> float:
    """Piecewise linear, clamped; each segment anchored at its upper end (as the SQL)."""
    if x <= points[0][0]:
        curve = points[0][1]
    else:
        for (v0, s0), (v1, s1) in zip(points, points[1:], strict=False):
            if x <= v1:
                curve = s1 + ((v1 - x) * (s0 - s1)) / (v1 - v0)
                break
        else:
            curve = points[-1][1]
    return max(0.0, min(100.0, curve))


def percentile_curves(values: dict[str, float | None], *, higher_is_better: bool) -> dict[str, float]:
    """customer -> the percentile curve (before rounding) over the customers with a value."""
    present = {cid: v for cid, v in values.items() if v is not None}
    n = len(present)
    if not n:
        return {}
    ordered = sorted(present.values(), reverse=not higher_is_better)
    first: dict[float, int] = {}
    ties: dict[float, int] = {}
    for index, value in enumerate(ordered):
        first.setdefault(value, index + 1)
        ties[value] = ties.get(value, 0) + 1
    low, high = min(ordered), max(ordered)
    out = {}
    for cid, v in present.items():
        if n >= PERCENTILE_MIN:
            curve = 100.0 * ((first[v] - 1) + (ties[v] - 1) / 2.0) / (n - 1)
        elif high == low:
            curve = 50.0
        elif higher_is_better:
            curve = 100.0 * (v - low) / (high - low)
        else:
            curve = 100.0 * (high - v) / (high - low)
        out[cid] = max(0.0, min(100.0, curve))
    return out


def metric_signals(
    *, workspace_id: str, specs: list[Spec], as_of: datetime, customer_ids: list[str] | None = None
) -> dict[str, list[dict]]:
    """Every live customer's event signals as `{key, category, label, unit, value, score}` (only
    the present ones, in spec order); customers without any event have none."""
    tz = timezone.get_current_timezone()
    scan = max([30] + [_reach(spec) for spec in specs])
    window = Event.objects.filter(
        workspace_id=workspace_id, timestamp__gte=as_of - timedelta(days=scan), timestamp__lt=as_of
    )
    customers = Customer.objects.filter(workspace_id=workspace_id)
    if customer_ids is not None:
        window = window.filter(customer_id__in=customer_ids)
        customers = customers.filter(pk__in=customer_ids)
    events: dict[str, list[_Event]] = {}
    for customer_id, type_, timestamp, properties in window.values_list(
        "customer_id", "type", "timestamp", "properties"
    ):
        events.setdefault(customer_id, []).append(_Event(type_, timestamp, properties or {}))
    last_event = Event.objects.filter(customer_id=OuterRef("pk"), timestamp__lt=as_of).order_by("-timestamp")
    engines = {
        customer_id: MetricEngine(events.get(customer_id, []), last_at, as_of, tz)
        for customer_id, last_at in customers.annotate(
            last_at=Subquery(last_event.values("timestamp")[:1])
        ).values_list("pk", F("last_at"))
        if last_at is not None
    }
    out: dict[str, list[dict]] = {customer_id: [] for customer_id in customers.values_list("pk", flat=True)}
    for spec in specs:
        raw = {cid: engine.value(spec) for cid, engine in engines.items()}
        shown = {
            cid: (round_half_up(r, 2) if r is not None and spec.kind == "days_since" else r)
            for cid, r in raw.items()
        }
        if spec.curve == "percentile":
            curves = percentile_curves(shown, higher_is_better=spec.higher_is_better)
        else:
            curves = {cid: points_curve(spec.points, r) for cid, r in raw.items() if r is not None}
        for cid, engine in engines.items():
            value = shown[cid]
            if value is None:
                if not spec.percent_of_previous:
                    continue
                score = 100.0 if engine.value(spec.base) > 0 else 0.0
            else:
                score = round_half_up(curves[cid], 2)
            out[cid].append(
                {
                    "key": spec.key,
                    "category": spec.category,
                    "label": spec.label,
                    "unit": spec.unit,
                    "value": value,
                    "score": score,
                }
            )
    return out


def _reach(spec: Spec) -> int:
    if spec.kind == "ratio":
        return max(_reach(spec.num), _reach(spec.den))
    if spec.kind == "change":
        return 2 * spec.base.window + spec.base.offset
    return spec.window + spec.offset


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def external_signals(workspace_id: str, ids: list[str] | None, as_of: datetime) -> dict[str, list[dict]]:
    rows = ExternalSignal.objects.filter(workspace_id=workspace_id, computed_at__lte=as_of)
    if ids is not None:
        rows = rows.filter(customer_id__in=ids)
    grouped: dict[str, list[dict]] = {}
    for row in rows.values(
        "customer_id", "key", "category", "label", "value", "unit", "score", "source", "computed_at"
    ):
        grouped.setdefault(row["customer_id"], []).append(
            signal_object(row, source=row["source"], computed_at=_iso(row["computed_at"]))
        )
    return grouped


def computed(*, workspace_id: str, model: HealthModel, as_of: datetime) -> dict[str, ScoreResult]:
    """Every live customer's score as the documented formulas give it (nothing written)."""
    specs = model_specs(model.metrics)
    events = metric_signals(workspace_id=workspace_id, specs=specs, as_of=as_of)
    external = external_signals(workspace_id, None, as_of)
    computed_at = _iso(as_of)
    results = {}
    for customer_id, raws in events.items():
        signals = [{**raw, "source": EVENTS_SOURCE, "computed_at": computed_at} for raw in raws]
        signals.extend(external.get(customer_id, ()))
        results[customer_id] = compute_score(signals, model.weights)
    return results


def rescore(
    *,
    workspace_id: str,
    model: HealthModel,
    as_of: datetime,
    snapshot_date: date | None = None,
    write_current: bool = True,
) -> int:
    """health.rescore.rescore of a whole workspace, the reference way (ORM writes)."""
    results = computed(workspace_id=workspace_id, model=model, as_of=as_of)
    with transaction.atomic():
        if write_current:
            _write_current(workspace_id, model, results, as_of)
        if snapshot_date is not None:
            HealthSnapshot.objects.bulk_create(
                [
                    HealthSnapshot(
                        workspace_id=workspace_id,
                        customer_id=customer_id,
                        date=snapshot_date,
                        score=result.score,
                        status=model.status_for(result.score),
                        confidence=result.confidence,
                        model_version=model.version,
                        computed_at=as_of,
                    )
                    for customer_id, result in results.items()
                    if result.score is not None
                ],
                update_conflicts=True,
                unique_fields=["customer", "date"],
                update_fields=["score", "status", "confidence", "model_version", "computed_at"],
            )
    return len(results)


def split_signals(signals: list[dict], keys: list[str]) -> tuple[dict, list[dict]]:
    """A computed breakdown as stored: the event signals' arrays in `keys` order (None for an
    absent signal) and the list of the other signals."""
    position = {key: index for index, key in enumerate(keys)}
    arrays = {column: [None] * len(keys) for column in ARRAY_COLUMNS}
    others = []
    for signal in signals:
        index = position.get(signal["key"]) if signal.get("source") == EVENTS_SOURCE else None
        if index is None:
            others.append(signal)
            continue
        arrays["signal_values"][index] = signal["value"]
        arrays["signal_scores"][index] = signal["score"]
        arrays["signal_contributions"][index] = signal["contribution"]
    return arrays, others


_HEALTH_COLUMNS = (
    "score",
    "status",
    "confidence",
    "model_version",
    "computed_at",
    "notified_score",
    "notified_status",
)


def _write_current(workspace_id: str, model: HealthModel, results: dict, as_of: datetime) -> None:
    previous = {
        row["customer_id"]: row
        for row in CustomerHealth.objects.filter(customer_id__in=list(results)).values(
            "customer_id", "score", "status", "notified_score", "notified_status"
        )
    }
    rows = []
    for customer_id, result in results.items():
        before = previous.get(customer_id) or {}
        rows.append(
            CurrentRow(
                customer_id=customer_id,
                workspace_id=workspace_id,
                score=result.score,
                status=model.status_for(result.score),
                confidence=result.confidence,
                model_version=model.version,
                signals=result.signals,
                computed_at=as_of,
                notified_score=before.get("notified_score"),
                notified_status=before.get("notified_status"),
            )
        )
    notifications = _notifications(model, rows, previous)
    stored = []
    keys = [spec.key for spec in model_specs(model.metrics)]
    for row in rows:
        columns, others = split_signals(row.signals, keys)
        stored.append(
            CustomerHealth(
                customer_id=row.customer_id,
                workspace_id=workspace_id,
                signals=others,
                **{column: getattr(row, column) for column in _HEALTH_COLUMNS},
                **columns,
            )
        )
    CustomerHealth.objects.bulk_create(
        stored,
        update_conflicts=True,
        unique_fields=["customer"],
        update_fields=[*_HEALTH_COLUMNS, "signals", *ARRAY_COLUMNS],
    )
    for row in rows:
        Customer.all_objects.filter(pk=row.customer_id).update(
            health_score=row.score, health_status=row.status, health_computed_at=row.computed_at
        )
    transaction.on_commit(lambda: generation.bump(workspace_id))
    if notifications:
        _publish(workspace_id, rows, notifications)
