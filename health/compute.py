"""Set-based event aggregates: one grouped query per batch of customers, never one per customer.

The window query reads the last 30 days of a workspace's events (the `event_ws_time_idx` range,
or the customer index when a batch of ids is given) and groups them by customer. The last event
time comes from a correlated subquery that the `(customer, -timestamp)` index answers with one
probe per customer, so customers silent for months still get a recency value.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.db.models import Count, F, OuterRef, Q, Subquery
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import TruncDate

from customers.models import Customer
from events.models import Event
from health.signals import EventAggregates

WINDOW_DAYS = 30
TREND_DAYS = 14


def event_aggregates(
    *, workspace_id: str, as_of: datetime, customer_ids: Iterable[str] | None = None
) -> dict[str, EventAggregates]:
    """Per-customer aggregates of the events before `as_of`, for every live customer in scope
    (last_event_at None: the customer has no event at all)."""
    ids = list(customer_ids) if customer_ids is not None else None
    window = Event.objects.filter(
        workspace_id=workspace_id,
        timestamp__gte=as_of - timedelta(days=WINDOW_DAYS),
        timestamp__lt=as_of,
    )
    if ids is not None:
        window = window.filter(customer_id__in=ids)
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
    with transaction.atomic():
        if connection.vendor == "postgresql":
            # The distinct counts sort the window by customer: keep that sort in memory, not on disk.
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL work_mem = '64MB'")
        windowed = {row["customer_id"]: row for row in rows}

    customers = Customer.objects.filter(workspace_id=workspace_id)
    if ids is not None:
        customers = customers.filter(pk__in=ids)
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
