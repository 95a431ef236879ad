"""Every event write: batch ingestion (API and demo), the customer purge, pruning."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

import orjson
from django.db import connection, transaction
from django.utils import timezone

from customers.models import Customer
from events.hooks import notify_events_ingested
from events.models import Event, EventTypeDaily
from events.storage import Row, delete_rows, ingest_transaction, insert_rows, purge_sweep_lock
from events.validation import Candidate, Rejection, customer_not_found, validate_event

DELETE_BATCH = 5000


@dataclass
class BatchResult:
    accepted: int = 0
    duplicates: int = 0
    rejected: list[Rejection] = field(default_factory=list)
    touched_customer_ids: set[str] = field(default_factory=set)

    def as_dict(self) -> dict:
        return {
            "object": "event_batch",
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "rejected": [rejection.as_dict() for rejection in self.rejected],
        }


# The references join against the customers (hash or index nested loop, linear either way).
# `id = ANY(ARRAY(SELECT ...))` looked like two index lookups but the planner scanned the whole
# workspace and compared each customer with each array element: ~12 ms of CPU per batch.
_RESOLVE_SQL = """
SELECT c.id, c.external_id FROM json_array_elements_text(%s::json) AS r(id)
JOIN {table} c ON c.id = r.id
WHERE c.workspace_id = %s AND c.deleted_at IS NULL
UNION ALL
SELECT c.id, c.external_id FROM json_array_elements_text(%s::json) AS r(external_id)
JOIN {table} c ON c.workspace_id = %s AND c.external_id = r.external_id
WHERE c.deleted_at IS NULL
"""


def _resolve_customers(workspace_id: str, candidates: list[Candidate]) -> tuple[dict, dict]:
    """One query for the whole batch: {cus_id: cus_id} and {external_id: cus_id}, live only.

    Soft-deleted customers (deleted_at set) are unknown: their events are being purged."""
    ids = {c.customer_id for c in candidates if c.customer_id is not None}
    external_ids = {c.customer_external_id for c in candidates if c.customer_external_id is not None}
    if not ids and not external_ids:
        return {}, {}
    # Two JSON parameters instead of ~1,000 placeholders, which psycopg would splice into
    # the query text one by one.
    sql = _RESOLVE_SQL.format(table=connection.ops.quote_name(Customer._meta.db_table))
    with connection.cursor() as cursor:
        cursor.execute(
            sql,
            [
                orjson.dumps(list(ids)).decode(),
                workspace_id,
                orjson.dumps(list(external_ids)).decode(),
                workspace_id,
            ],
        )
        found = cursor.fetchall()
    by_id: dict[str, str] = {}
    by_external: dict[str, str] = {}
    for customer_id, external_id in found:
        by_id[customer_id] = customer_id
        if external_id is not None:
            by_external[external_id] = customer_id
    return by_id, by_external


def event_batch_ingest(
    *, workspace_id: str, events: list, received_at: datetime | None = None
) -> BatchResult:
    """Validate, resolve and store one batch (1 to 1,000 events) in one transaction.

    Invalid events are rejected one by one; the rest are stored all-or-nothing. An
    idempotency_key already stored in the workspace, or repeated earlier in the batch, makes the
    event a duplicate. Listeners of events.hooks run once, after the commit.
    """
    now = received_at or timezone.now()
    result = BatchResult()
    candidates: list[Candidate] = []
    for index, event in enumerate(events):
        outcome = validate_event(index, event, now)
        if type(outcome) is Candidate:
            candidates.append(outcome)
        else:
            result.rejected.append(outcome)

    inserted: list[str] = []
    if candidates:
        inserted, not_found, duplicates = ingest_transaction(
            workspace_id, lambda: _store(workspace_id, candidates, now)
        )
        result.rejected.extend(not_found)
        result.duplicates = duplicates
    result.accepted = len(inserted)
    result.touched_customer_ids = set(inserted)
    result.rejected.sort(key=lambda rejection: rejection.index)
    # Committed above (ingest_transaction), so listeners never mark a batch that rolled back.
    notify_events_ingested(workspace_id, result.touched_customer_ids)
    return result


def _store(
    workspace_id: str, candidates: list[Candidate], now: datetime
) -> tuple[list[str], list[Rejection], int]:
    """Inside ingest_transaction: resolve, dedupe within the batch, insert. Returns the inserted
    rows' customer ids, the customer_not_found rejections and the duplicate count."""
    # Inside the transaction, after the ingest lock: a customer soft-deleted before this
    # lookup is unknown, and a purge's final sweep waits for this commit (storage.py).
    by_id, by_external = _resolve_customers(workspace_id, candidates)
    not_found: list[Rejection] = []
    seen_keys: set[str] = set()
    keyed: list[Row] = []
    unkeyed: list[Row] = []
    repeated = 0
    for candidate in candidates:
        if candidate.customer_id is not None:
            customer_id = by_id.get(candidate.customer_id)
        else:
            customer_id = by_external.get(candidate.customer_external_id)
        if customer_id is None:
            not_found.append(customer_not_found(candidate))
            continue
        key = candidate.idempotency_key
        row = Row(customer_id, candidate.type, candidate.timestamp, candidate.properties_json, key)
        if key is None:
            unkeyed.append(row)
        elif key in seen_keys:
            repeated += 1  # the first event with a key wins
        else:
            seen_keys.add(key)
            keyed.append(row)
    # Keys in one global order: two batches sharing keys then lock them in the same order
    # and cannot deadlock on the unique index.
    keyed.sort(key=lambda row: row.idempotency_key)
    rows = keyed + unkeyed
    inserted = insert_rows(workspace_id, rows, now)
    return inserted, not_found, repeated + len(rows) - len(inserted)


def _delete_in_batches(queryset) -> int:
    """Delete by primary key, DELETE_BATCH rows per statement, so no lock is held for long; each
    statement also takes its events off the daily type counters (storage.delete_rows)."""
    deleted = 0
    while True:
        rows = list(queryset.values_list("workspace_id", "id")[:DELETE_BATCH])
        if not rows:
            return deleted
        by_workspace: dict[str, list[str]] = {}
        for workspace_id, event_id in rows:
            by_workspace.setdefault(workspace_id, []).append(event_id)
        for workspace_id, ids in by_workspace.items():
            deleted += delete_rows(workspace_id, ids=ids)


def events_purge_customer(customer_id: str) -> int:
    """The customers.hooks purger: a deleted (soft-deleted first) customer's events go, in
    batches, then a last sweep under the workspace's exclusive ingest lock.

    There is no foreign key from events to customers (its per-row trigger cost a third of each
    INSERT): the sweep is what guarantees that no event outlives its customer. It waits for
    every in-flight batch that could have resolved the customer before its soft delete and
    deletes what they stored; batches that start later cannot resolve it (storage.py)."""
    deleted = _delete_in_batches(Event.objects.filter(customer_id=customer_id))
    workspace_id = Customer.all_objects.filter(pk=customer_id).values_list("workspace_id", flat=True).first()
    if workspace_id is None:
        return deleted
    with transaction.atomic():
        purge_sweep_lock(workspace_id)
        count = delete_rows(workspace_id, customer_id=customer_id)
    return deleted + count


def events_prune(*, before: datetime, workspace_id: str | None = None) -> int:
    """Delete events with timestamp < before (in one workspace, or all); returns the count.
    The daily type counters of the days now empty go with them."""
    queryset = Event.objects.filter(timestamp__lt=before)
    if workspace_id is not None:
        queryset = queryset.filter(workspace_id=workspace_id)
    deleted = _delete_in_batches(queryset)
    # Those days have no event left (the day of `before` itself may): their counters go whole.
    counters = EventTypeDaily.objects.filter(day__lt=before.astimezone(UTC).date())
    if workspace_id is not None:
        counters = counters.filter(workspace_id=workspace_id)
    counters.delete()
    return deleted
