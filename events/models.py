from __future__ import annotations

from django.db import models
from django.utils import timezone

from customers.models import Customer
from perly.ids import id_factory
from perly.models import Workspace


class Event(models.Model):
    """One product event a workspace sent about one of its customers.

    Scale: when one table is no longer enough, partition by RANGE (timestamp) per month. Every
    index below leads with workspace or customer and includes timestamp, so each would become a
    per-partition index; the dedupe index then needs the month (or a separate dedupe table keyed
    by (workspace, idempotency_key)), since a unique index on a partitioned table must include
    the partition key.
    """

    id = models.CharField(primary_key=True, max_length=32, default=id_factory("evt"), editable=False)
    # db_index=False on both foreign keys: the composite indexes below lead with the same
    # column, and every extra index is paid on each of hundreds of millions of inserts.
    # db_constraint=False on workspace: a per-row FK trigger costs ~10% of ingestion, and the
    # workspace is the API key's own (it cannot be missing); deleting one cascades in the ORM.
    workspace = models.ForeignKey(
        Workspace, on_delete=models.CASCADE, related_name="+", db_index=False, db_constraint=False
    )
    # DO_NOTHING: a customer's events are deleted in batches by the purge, not by the ORM's
    # collector, which would load millions of rows. db_constraint=False: the per-row RI trigger
    # (an index lookup and a row lock on the customer per event) cost about a third of each
    # batch INSERT. Ingestion resolves customers under a shared per-workspace advisory lock and
    # the purge ends with a sweep under the exclusive one, so no event outlives its customer
    # (events/storage.py, lock_workspace_for_ingest).
    customer = models.ForeignKey(
        Customer, on_delete=models.DO_NOTHING, related_name="+", db_index=False, db_constraint=False
    )
    type = models.CharField(max_length=100)
    timestamp = models.DateTimeField()
    properties = models.JSONField(default=dict)
    idempotency_key = models.CharField(max_length=255, null=True, blank=True)
    received_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "idempotency_key"],
                condition=models.Q(idempotency_key__isnull=False),
                name="event_idempotency_unique",
            )
        ]
        indexes = [
            # GET /v1/events (a workspace's events, newest first) and prune by date.
            models.Index(fields=["workspace", "-timestamp", "-id"], name="event_ws_time_idx"),
            # GET /v1/events?customer=, the health scoring windows and the customer purge.
            models.Index(fields=["customer", "-timestamp", "-id"], name="event_customer_time_idx"),
        ]


class EventTypeDaily(models.Model):
    """How many events of one type a workspace stored per UTC day (by event timestamp), kept by
    the ingestion statement itself, so `GET /v1/events/types` never counts the events table.

    Each batch adds to one of COUNTER_SHARDS rows per (type, day), picked at random: concurrent
    batches of a workspace mostly touch different rows instead of queueing on one row lock until
    the other's commit (with one row per type and day, 4 clients lost a third of the throughput).
    A count is the sum over the shards; a shard alone may go negative after deletes."""

    pk = models.CompositePrimaryKey("workspace", "type", "day", "shard")
    # No FK constraint, like Event: the workspace is the key's own; deleting one cascades in the ORM.
    workspace = models.ForeignKey(
        Workspace, on_delete=models.CASCADE, related_name="+", db_index=False, db_constraint=False
    )
    type = models.CharField(max_length=100)
    day = models.DateField()
    shard = models.SmallIntegerField(default=0)
    count = models.BigIntegerField()
    last_seen_at = models.DateTimeField()
