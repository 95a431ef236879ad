"""Rescoring: on PostgreSQL set-based in SQL (health.rescore_sql); elsewhere (the portable
path) aggregates in one grouped query, scores in Python, writes in bulk per chunk.

`rescore(...)` serves three callers: the dirty-mark drain (a batch of ids, as of now), full
rescoring (the nightly rollup, `recompute_health`, a new model version) and history backfill
(as of the end of a past day, writing snapshots only). Query count per call is constant in the
number of customers: never a query per customer.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from customers.models import Customer
from health import generation
from health.bulk import pg_update, pg_upsert
from health.compute import event_aggregates
from health.models import EVENT_SIGNAL_COLUMNS, CustomerHealth, ExternalSignal, HealthModel, HealthSnapshot
from health.representation import current_health_representations, split_signals
from health.scoring import compute_score, signal_object
from health.signals import EVENTS_SOURCE, event_signals
from webhooks.services import webhook_events_publish_many

logger = logging.getLogger("perly.health")

CHUNK = 2000
NOTIFY_DELTA = 5.0


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _external_signals(workspace_id: str, ids: list[str] | None, as_of: datetime) -> dict[str, list[dict]]:
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


def rescore(
    *,
    workspace_id: str,
    model: HealthModel,
    customer_ids: Iterable[str] | None = None,
    as_of: datetime | None = None,
    snapshot_date: date | None = None,
    write_current: bool = True,
) -> int:
    """Rescore a workspace's live customers (all, or `customer_ids`); returns how many.

    PostgreSQL runs it set-based end to end (health.rescore_sql); other databases, or
    settings.HEALTH_SQL_RESCORE = False, take the portable path below (same results)."""
    as_of = as_of or timezone.now()
    ids = list(dict.fromkeys(customer_ids)) if customer_ids is not None else None
    if ids is not None and not ids:
        return 0
    if connection.vendor == "postgresql" and getattr(settings, "HEALTH_SQL_RESCORE", True):
        from health.rescore_sql import rescore_set_based

        return rescore_set_based(
            workspace_id=workspace_id,
            model=model,
            ids=ids,
            as_of=as_of,
            snapshot_date=snapshot_date,
            write_current=write_current,
        )
    aggregates = event_aggregates(workspace_id=workspace_id, as_of=as_of, customer_ids=ids)
    external = _external_signals(workspace_id, ids, as_of)
    computed_at = _iso(as_of)
    results = []
    for customer_id, agg in aggregates.items():
        signals = [
            signal_object(raw, source=EVENTS_SOURCE, computed_at=computed_at)
            for raw in event_signals(agg, as_of)
        ]
        signals.extend(external.get(customer_id, ()))
        results.append((customer_id, compute_score(signals, model.weights)))
    for start in range(0, len(results), CHUNK):
        _write_chunk(
            workspace_id=workspace_id,
            model=model,
            results=results[start : start + CHUNK],
            as_of=as_of,
            snapshot_date=snapshot_date,
            write_current=write_current,
        )
    return len(results)


@dataclass(slots=True)
class CurrentRow:
    """A CustomerHealth row to write (plain objects: model instances cost more than the write)."""

    customer_id: str
    workspace_id: str
    score: float | None
    status: str
    confidence: float
    model_version: int
    signals: list
    computed_at: datetime
    notified_score: float | None
    notified_status: str | None


def _write_chunk(*, workspace_id, model, results, as_of, snapshot_date, write_current) -> None:
    ids = [customer_id for customer_id, _ in results]
    with transaction.atomic():
        if write_current:
            previous = {
                row["customer_id"]: row
                for row in CustomerHealth.objects.filter(customer_id__in=ids).values(
                    "customer_id", "score", "status", "notified_score", "notified_status"
                )
            }
            rows = []
            for customer_id, result in results:
                status = model.status_for(result.score)
                before = previous.get(customer_id) or {}
                rows.append(
                    CurrentRow(
                        customer_id=customer_id,
                        workspace_id=workspace_id,
                        score=result.score,
                        status=status,
                        confidence=result.confidence,
                        model_version=model.version,
                        signals=result.signals,
                        computed_at=as_of,
                        notified_score=before.get("notified_score"),
                        notified_status=before.get("notified_status"),
                    )
                )
            notifications = _notifications(model, rows, previous)
            _save_current(rows)
            transaction.on_commit(lambda: generation.bump(workspace_id))
            if notifications:
                _publish(workspace_id, rows, notifications)
        if snapshot_date is not None:
            _save_snapshots(
                [
                    (
                        workspace_id,
                        customer_id,
                        snapshot_date,
                        result.score,
                        model.status_for(result.score),
                        result.confidence,
                        model.version,
                        as_of,
                    )
                    for customer_id, result in results
                    if result.score is not None
                ]
            )


_HEALTH_COLUMNS = (
    "score",
    "status",
    "confidence",
    "model_version",
    "signals",
    "computed_at",
    "notified_score",
    "notified_status",
)
_SNAPSHOT_COLUMNS = ("score", "status", "confidence", "model_version", "computed_at")


def _stored(row: CurrentRow) -> dict:
    """The CustomerHealth columns of a row: the event signals in their own columns."""
    columns, others = split_signals(row.signals)
    return {
        "customer_id": row.customer_id,
        "workspace_id": row.workspace_id,
        **{column: getattr(row, column) for column in _HEALTH_COLUMNS},
        "signals": others,
        **columns,
    }


def _save_current(rows: list[CurrentRow]) -> None:
    """Upsert the current scores and mirror score/status onto Customer (lists filter on them)."""
    stored = [_stored(row) for row in rows]
    if connection.vendor == "postgresql":
        columns = ("customer_id", "workspace_id", *_HEALTH_COLUMNS, *EVENT_SIGNAL_COLUMNS)
        pg_upsert(
            table=CustomerHealth._meta.db_table,
            columns=columns,
            rows=[tuple(values[column] for column in columns) for values in stored],
            conflict=("customer_id",),
            update=(*_HEALTH_COLUMNS, *EVENT_SIGNAL_COLUMNS),
            newer="computed_at",
        )
        pg_update(
            table=Customer._meta.db_table,
            key="id",
            columns=("health_score", "health_status", "health_computed_at"),
            rows=[(row.customer_id, row.score, row.status, row.computed_at) for row in rows],
            newer="health_computed_at",
        )
        return
    CustomerHealth.objects.bulk_create(
        [CustomerHealth(**values) for values in stored],
        update_conflicts=True,
        unique_fields=["customer"],
        update_fields=[*_HEALTH_COLUMNS, *EVENT_SIGNAL_COLUMNS],
    )
    for row in rows:
        Customer.all_objects.filter(pk=row.customer_id).update(
            health_score=row.score, health_status=row.status, health_computed_at=row.computed_at
        )


def _save_snapshots(rows: list[tuple]) -> None:
    """rows: (workspace_id, customer_id, date, score, status, confidence, model_version, computed_at)."""
    columns = ("workspace_id", "customer_id", "date", *_SNAPSHOT_COLUMNS)
    if connection.vendor == "postgresql":
        pg_upsert(
            table=HealthSnapshot._meta.db_table,
            columns=columns,
            rows=rows,
            conflict=("customer_id", "date"),
            update=_SNAPSHOT_COLUMNS,
        )
        return
    HealthSnapshot.objects.bulk_create(
        [HealthSnapshot(**dict(zip(columns, row, strict=True))) for row in rows],
        update_conflicts=True,
        unique_fields=["customer", "date"],
        update_fields=list(_SNAPSHOT_COLUMNS),
    )


def _notifications(model: HealthModel, rows: list[CurrentRow], previous: dict) -> dict[str, list[tuple]]:
    """Which webhooks each customer's new score triggers; updates the rows' notified_* fields.

    score_changed: moved >= 5 points from the last notified score, or the status changed.
    status_changed: the status differs from the previous computation's.
    at_risk: the score crossed below the at-risk threshold (it was healthy or neutral before).
    The first score of a customer is a baseline and publishes nothing."""
    out: dict[str, list[tuple]] = {}
    for row in rows:
        before = previous.get(row.customer_id)
        if before is None:
            # A customer's first score is its baseline, not a change: no webhook (an import of
            # 100,000 customers must not send 200,000 events).
            row.notified_score, row.notified_status = row.score, row.status
            continue
        old_status = before.get("status") or "unknown"
        old_score = before.get("score")
        events: list[tuple] = []
        if row.status != old_status:
            events.append(("health.status_changed", {"status": old_status, "score": old_score}))
        notified = row.notified_score
        moved = (notified is None) != (row.score is None) or (
            notified is not None and row.score is not None and abs(row.score - notified) >= NOTIFY_DELTA
        )
        if moved or row.status != (row.notified_status or "unknown"):
            events.append(
                ("health.score_changed", {"score": notified, "status": row.notified_status or "unknown"})
            )
            row.notified_score, row.notified_status = row.score, row.status
        if row.status == "at_risk" and old_status in ("healthy", "neutral"):
            events.append(("health.at_risk", {"status": old_status, "score": old_score}))
        if events:
            out[row.customer_id] = events
    return out


# A customer's webhooks, in the order _notifications lists them.
_EVENT_ORDER = ("health.status_changed", "health.score_changed", "health.at_risk")


def _publish(workspace_id: str, rows: list[CurrentRow], notifications: dict) -> None:
    """One set-based publish per event type (one endpoint query and one insert each, not one
    per customer: a nightly rollup notifies tens of thousands). Types go out in _EVENT_ORDER,
    so each customer's messages keep their order."""
    notified = [row for row in rows if notifications.get(row.customer_id)]
    data = current_health_representations(notified)
    batches: dict[str, tuple[list[dict], list[dict | None]]] = {}
    for row in notified:
        for event_type, previous_attributes in notifications[row.customer_id]:
            objects, previous = batches.setdefault(event_type, ([], []))
            objects.append(data[row.customer_id])
            previous.append(previous_attributes)
    for event_type in sorted(batches, key=lambda name: (_EVENT_ORDER + (name,)).index(name)):
        objects, previous = batches[event_type]
        webhook_events_publish_many(
            workspace_id=workspace_id,
            event_type=event_type,
            data_objects=objects,
            previous_attributes=previous,
        )
