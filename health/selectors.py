"""Health reads for the API and the admin: current health, signals, history, summary, at-risk."""

from __future__ import annotations

import hashlib
import logging
import statistics
from datetime import date, timedelta

from django.core.cache import cache
from django.db import connection
from django.db.models import Avg, Count, Exists, Max, OuterRef, Q
from django.utils import timezone

from customers.models import Customer, HealthStatus
from health import generation as generation_counter
from health.churn_curve import applied_curve, churn_probability
from health.models import CustomerHealth, ExternalSignal, HealthModel, HealthSnapshot
from health.representation import (
    BREAKDOWN_FIELDS,
    current_health_representations,
    health_representation,
    scores_on,
    signal_representation,
    stored_signals,
)
from health.scoring import signal_object
from health.services import health_model_current
from perly.timestamps import iso

logger = logging.getLogger("perly.health")

BUCKETS = [(index * 10, index * 10 + 10) for index in range(10)]


def customer_health(*, customer: Customer) -> dict:
    health = CustomerHealth.objects.filter(customer_id=customer.id).first()
    if health is None:
        model = health_model_current(workspace_id=customer.workspace_id)
        return health_representation(
            customer_id=customer.id,
            score=None,
            status=HealthStatus.UNKNOWN,
            confidence=0.0,
            model_version=model.version,
            computed_at=None,
            signals=[],
            score_7d_ago=None,
            score_30d_ago=None,
        )
    return current_health_representations([health])[customer.id]


def customer_signals(*, customer: Customer) -> list[dict]:
    """Event signals as last computed, plus the integrations' current signals."""
    health = CustomerHealth.objects.filter(customer_id=customer.id).values(*BREAKDOWN_FIELDS).first()
    stored = stored_signals(health) if health is not None else []
    signals = {signal["key"]: signal for signal in stored if signal.get("source") == "events"}
    for row in ExternalSignal.objects.filter(customer_id=customer.id).values():
        signals[row["key"]] = signal_object(row, source=row["source"], computed_at=iso(row["computed_at"]))
    return [signal_representation(signals[key], with_weight=False) for key in sorted(signals)]


# --- History -----------------------------------------------------------------------------------


def customer_history(*, customer: Customer, granularity: str, start: date, end: date) -> list[dict]:
    rows = list(
        HealthSnapshot.objects.filter(customer_id=customer.id, date__gte=start, date__lte=end)
        .order_by("date")
        .values_list("date", "score", "status", "model_version")
    )
    applied = applied_curve(customer.workspace_id)
    if granularity == "daily":
        return [
            {
                "date": day.isoformat(),
                "score": score,
                "status": status,
                "model_version": version,
                "churn_probability": churn_probability(score, applied),
            }
            for day, score, status, version in rows
        ]
    models = {
        model.version: model for model in HealthModel.objects.filter(workspace_id=customer.workspace_id)
    }
    weeks: dict[date, list[tuple]] = {}
    for row in rows:
        weeks.setdefault(row[0] - timedelta(days=row[0].weekday()), []).append(row)
    points = []
    for monday in sorted(weeks):
        scores = [score for _, score, _, _ in weeks[monday] if score is not None]
        version = weeks[monday][-1][3]
        mean = round(statistics.fmean(scores), 2) if scores else None
        model = models.get(version)
        status = model.status_for(mean) if model else HealthStatus.UNKNOWN
        points.append(
            {
                "date": monday.isoformat(),
                "score": mean,
                "status": status,
                "model_version": version,
                "churn_probability": churn_probability(mean, applied),
            }
        )
    return points


# --- Summary -----------------------------------------------------------------------------------


SUMMARY_TTL_SECONDS = 10


def health_summary(
    *, workspace_id: str, plan: str | None, owner: str | None, lifecycle_stage: str | None
) -> dict:
    """Cached per segment until the workspace's scores change (generation) or for 10 s, so a
    dashboard polling it costs one aggregate per rescore, not one per request."""
    generation = generation_counter.current(workspace_id)
    if generation < 0:
        return _health_summary(workspace_id, plan, owner, lifecycle_stage)
    segment = (workspace_id, generation, plan, owner.lower() if owner else None, lifecycle_stage)
    key = "health:summary:" + hashlib.sha256(repr(segment).encode()).hexdigest()
    try:
        cached = cache.get(key)
    except Exception:  # a cache outage must not break reads
        cached = None
    if cached is not None:
        return cached
    summary = _health_summary(workspace_id, plan, owner, lifecycle_stage)
    try:
        cache.set(key, summary, timeout=SUMMARY_TTL_SECONDS)
    except Exception as exc:
        logger.warning("health: could not cache the summary: %s", exc)
    return summary


def _health_summary(
    workspace_id: str, plan: str | None, owner: str | None, lifecycle_stage: str | None
) -> dict:
    customers = Customer.objects.filter(workspace_id=workspace_id)
    if plan is not None:
        customers = customers.filter(plan=plan)
    if owner is not None:
        customers = customers.filter(owner__iexact=owner)
    if lifecycle_stage is not None:
        customers = customers.filter(lifecycle_stage=lifecycle_stage)
    scored = Q(health_score__isnull=False)
    aggregates = {
        "total": Count("id"),
        "average": Avg("health_score"),
        **{
            status: Count("id", filter=Q(health_status=status))
            for status in ("healthy", "neutral", "at_risk", "churned")
        },
    }
    for low, high in BUCKETS:
        upper = Q(health_score__lte=high) if high == 100 else Q(health_score__lt=high)
        aggregates[f"b{low}"] = Count("id", filter=scored & Q(health_score__gte=low) & upper)
    result = customers.aggregate(**aggregates)
    known = result["healthy"] + result["neutral"] + result["at_risk"] + result["churned"]
    return {
        "object": "health_summary",
        "total_customers": result["total"],
        "average_score": None if result["average"] is None else round(result["average"], 2),
        "median_score": _median(customers),
        "by_status": {
            "healthy": result["healthy"],
            "neutral": result["neutral"],
            "at_risk": result["at_risk"],
            "churned": result["churned"],
            "unknown": result["total"] - known,
        },
        "distribution": [{"min": low, "max": high, "count": result[f"b{low}"]} for low, high in BUCKETS],
        "computed_at": iso(timezone.now()),
    }


def _median(customers) -> float | None:
    sql, params = customers.filter(health_score__isnull=False).values("health_score").query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY s.health_score) FROM ({sql}) s",  # noqa: S608
            params,
        )
        value = cursor.fetchone()[0]
    return None if value is None else round(value, 2)


# --- At risk -----------------------------------------------------------------------------------


def at_risk_queryset(
    *, workspace_id: str, threshold: float, dropped_after: date | None, segment: dict | None = None
):
    """Current scores below the threshold, on CustomerHealth so that (workspace, score, customer)
    serves both the filter and the order: a page is an index range scan even with ties.

    `segment` (the admin dashboard's) narrows to customers with that plan, owner (any case) and
    lifecycle_stage; a None value does not filter. Churned customers are left out."""
    rows = CustomerHealth.objects.filter(
        workspace_id=workspace_id, score__lt=threshold, customer__deleted_at__isnull=True
    ).exclude(status=HealthStatus.CHURNED)  # already lost: nobody to save
    segment = segment or {}
    for name, lookup in (
        ("plan", "plan"),
        ("owner", "owner__iexact"),
        ("lifecycle_stage", "lifecycle_stage"),
    ):
        if segment.get(name) is not None:
            rows = rows.filter(**{f"customer__{lookup}": segment[name]})
    if dropped_after is not None:
        # dropped_at >= D  <=>  some snapshot at/above the threshold is followed by no snapshot
        # below it before D (see at_risk_rows for how dropped_at is defined).
        below_before = HealthSnapshot.objects.filter(
            customer_id=OuterRef(OuterRef("customer_id")),
            score__lt=threshold,
            date__gt=OuterRef("date"),
            date__lt=dropped_after,
        )
        above = HealthSnapshot.objects.filter(
            customer_id=OuterRef("customer_id"), score__gte=threshold
        ).filter(~Exists(below_before))
        rows = rows.filter(Exists(above))
    return rows


def at_risk_page(
    *,
    workspace_id: str,
    threshold: float,
    dropped_after: date | None,
    limit: int,
    cursor: tuple[float, str] | None = None,
    forward: bool = True,
    segment: dict | None = None,
) -> tuple[list[Customer], bool]:
    """One page ordered by (score, customer id); `cursor` is the (score, id) to start after
    (forward) or end before. Returns (customers, has_more)."""
    rows = at_risk_queryset(
        workspace_id=workspace_id, threshold=threshold, dropped_after=dropped_after, segment=segment
    )
    ordering = ("score", "customer_id")
    if cursor is not None:
        # A row-value comparison, which both PostgreSQL and SQLite answer with an index range scan
        # (an OR of two conditions would not be).
        op = ">" if forward else "<"
        table = CustomerHealth._meta.db_table
        rows = rows.extra(  # noqa: S610 (fixed SQL; the cursor values are parameters)
            where=[f'("{table}"."score", "{table}"."customer_id") {op} (%s, %s)'], params=list(cursor)
        )
    if not forward:
        ordering = ("-score", "-customer_id")
    ids = list(rows.order_by(*ordering).values_list("customer_id", flat=True)[: limit + 1])
    has_more = len(ids) > limit
    ids = ids[:limit]
    if not forward:
        ids.reverse()
    customers = Customer.objects.in_bulk(ids)
    return [customers[customer_id] for customer_id in ids if customer_id in customers], has_more


def at_risk_cursor(*, workspace_id: str, customer_id: str) -> tuple[float, str] | None:
    score = (
        CustomerHealth.objects.filter(workspace_id=workspace_id, customer_id=customer_id, score__isnull=False)
        .values_list("score", flat=True)
        .first()
    )
    return None if score is None else (score, customer_id)


def at_risk_rows(*, customers: list[Customer], threshold: float) -> list[dict]:
    """The at-risk objects for one page of customers, with a constant number of queries.

    dropped_at: the first snapshot below the threshold after the last one at or above it (or
    the current score's time when no snapshot below follows yet); null if never above."""
    ids = [customer.id for customer in customers]
    health = {
        row["customer_id"]: row
        for row in CustomerHealth.objects.filter(customer_id__in=ids).values(
            "customer_id", "score", *BREAKDOWN_FIELDS
        )
    }
    today = timezone.now().date()
    week = today - timedelta(days=7)
    previous = scores_on(ids, [week])
    last_above = dict(
        HealthSnapshot.objects.filter(customer_id__in=ids, score__gte=threshold)
        .values("customer_id")
        .annotate(last=Max("date"))
        .values_list("customer_id", "last")
    )
    first_below_after: dict[str, date] = {}
    if last_above:
        below = (
            HealthSnapshot.objects.filter(customer_id__in=list(last_above), score__lt=threshold)
            .values("customer_id", "date")
            .order_by()
        )
        for row in below:
            if row["date"] > last_above[row["customer_id"]]:
                current = first_below_after.get(row["customer_id"])
                if current is None or row["date"] < current:
                    first_below_after[row["customer_id"]] = row["date"]
    out = []
    for customer in customers:
        info = health.get(customer.id) or {}
        dropped_at: str | None = None
        if customer.id in last_above:
            day = first_below_after.get(customer.id)
            if day is not None:
                dropped_at = f"{day.isoformat()}T00:00:00Z"
            elif info.get("computed_at"):
                dropped_at = iso(info["computed_at"])
        signals = sorted(
            stored_signals(info) if info else [], key=lambda signal: (signal["score"], signal["key"])
        )
        out.append(
            {
                "object": "at_risk_customer",
                "customer": {
                    "id": customer.id,
                    "name": customer.name,
                    "external_id": customer.external_id,
                    "email": customer.email,
                },
                "score": info.get("score", customer.health_score),
                "previous_score": previous.get((customer.id, week)),
                "dropped_at": dropped_at,
                "weakest_signals": [
                    signal_representation(signal, with_weight=True) for signal in signals[:2]
                ],
            }
        )
    return out
