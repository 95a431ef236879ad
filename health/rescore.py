"""Rescoring, set-based in SQL end to end (health.rescore_sql); webhooks published from here.

`rescore(...)` serves three callers: the dirty-mark drain (a batch of ids, as of now), full
rescoring (the nightly rollup, `recompute_health`, a new model version) and history backfill
(as of the end of a past day, writing snapshots only). Query count per call is constant in the
number of customers: never a query per customer. tests/health/oracle.py is the Python reference
the parity tests compare it with.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime

from django.utils import timezone

from health.models import HealthModel
from health.representation import current_health_representations
from health.rescore_sql import rescore_set_based
from webhooks.services import webhook_events_publish_many

logger = logging.getLogger("perly.health")

NOTIFY_DELTA = 5.0


def rescore(
    *,
    workspace_id: str,
    model: HealthModel,
    customer_ids: Iterable[str] | None = None,
    as_of: datetime | None = None,
    snapshot_date: date | None = None,
    write_current: bool = True,
) -> int:
    """Rescore a workspace's live customers (all, or `customer_ids`); returns how many."""
    as_of = as_of or timezone.now()
    ids = list(dict.fromkeys(customer_ids)) if customer_ids is not None else None
    if ids is not None and not ids:
        return 0
    return rescore_set_based(
        workspace_id=workspace_id,
        model=model,
        ids=ids,
        as_of=as_of,
        snapshot_date=snapshot_date,
        write_current=write_current,
    )


@dataclass(slots=True)
class CurrentRow:
    """A rescored customer whose webhooks are due (plain objects, as _notifications reads them)."""

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
