"""Reads for the staff pages: the customer list's health columns, each signal's workspace median
and the reasons behind a low score (a customer's signals furthest below those medians)."""

from __future__ import annotations

import json
from datetime import date, timedelta

from django.db import connection
from django.db.models import Aggregate, FloatField, OuterRef, QuerySet, Subquery
from django.utils import timezone

from events.models import Event
from health.models import CustomerHealth, ExternalSignal, HealthModel, HealthSnapshot
from health.representation import version_layout
from perly.admin_ui import measure

MRR_KEY = "billing.mrr"


class Median(Aggregate):
    """PostgreSQL's continuous median (Django ships no percentile aggregate)."""

    function = "percentile_cont"
    template = "%(function)s(0.5) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()


def customers_with_health_columns(queryset: QuerySet, *, today: date | None = None) -> QuerySet:
    """Customers annotated with score_7d_ago, mrr / mrr_unit (billing data, when an integration
    wrote it) and last_activity_at (newest event): one indexed lookup each per listed row."""
    week_ago = (today or timezone.now().date()) - timedelta(days=7)
    mrr = ExternalSignal.objects.filter(customer_id=OuterRef("pk"), key=MRR_KEY)
    return queryset.annotate(
        score_7d_ago=Subquery(
            HealthSnapshot.objects.filter(customer_id=OuterRef("pk"), date=week_ago).values("score")[:1]
        ),
        mrr=Subquery(mrr.values("value")[:1]),
        mrr_unit=Subquery(mrr.values("unit")[:1]),
        last_activity_at=Subquery(
            Event.objects.filter(customer_id=OuterRef("pk")).order_by("-timestamp").values("timestamp")[:1]
        ),
    )


def signal_medians(*, workspace_id: str) -> dict[str, float]:
    """Each signal's median score over the workspace's scored customers, keyed by signal key.

    The event signals' scores are array elements whose position depends on the row's model
    version: each version's (position, key) pairs are a parameter, and one grouped statement
    takes the median per key over every row."""
    versions = list(
        HealthModel.objects.filter(workspace_id=workspace_id)
        .values_list("version", flat=True)
        .order_by("version")
    )
    layout = [
        {"version": version, "position": index + 1, "key": spec.key}
        for version in versions
        for index, spec in enumerate(version_layout(workspace_id, version)[0])
    ]
    medians: dict[str, float] = {}
    if layout:
        with connection.cursor() as cursor:
            cursor.execute(
                f"""
                SELECT l.key, percentile_cont(0.5) WITHIN GROUP (ORDER BY h.signal_scores[l.position])
                FROM "{CustomerHealth._meta.db_table}" h
                JOIN jsonb_to_recordset(%s::jsonb) AS l(version int, position int, key text)
                  ON l.version = h.model_version
                WHERE h.workspace_id = %s AND h.signal_scores[l.position] IS NOT NULL
                GROUP BY l.key
                """,  # noqa: S608
                [json.dumps(layout), workspace_id],
            )
            medians.update(dict(cursor.fetchall()))
    external = (
        ExternalSignal.objects.filter(workspace_id=workspace_id)
        .values("key")
        .annotate(median=Median("score"))
        .values_list("key", "median")
    )
    medians.update(dict(external))
    return medians


def weakest_against_median(signals: list[dict], medians: dict[str, float], *, count: int = 2) -> list[dict]:
    """The `count` signals furthest below the workspace median (ties: the lower score, then the
    heavier weight). A signal without a median compares with 100 (nobody to compare with)."""

    def gap(signal: dict) -> float:
        return signal["score"] - medians.get(signal["key"], 100.0)

    ranked = sorted(
        signals,
        key=lambda signal: (gap(signal), signal["score"], -(signal.get("weight") or 0.0), signal["key"]),
    )
    return [{**signal, "median": medians.get(signal["key"])} for signal in ranked[:count]]


def reason_text(signal: dict) -> str:
    """One sentence a CSM can repeat: the value, its score, and where the workspace stands."""
    measured = "no value" if signal.get("value") is None else measure(signal["value"], signal.get("unit"))
    median = signal.get("median")
    versus = "" if median is None else f", workspace median {median:.0f}"
    return f"{signal['label']}: {measured} (score {signal['score']:.0f}{versus})"


def recent_events(*, customer_id: str, limit: int = 20) -> list[Event]:
    return list(Event.objects.filter(customer_id=customer_id).order_by("-timestamp", "-id")[:limit])
