"""Writing a validated batch: one INSERT ... ON CONFLICT DO NOTHING statement.

A batch is stored all-or-nothing in one transaction, skipping rows whose
(workspace, idempotency_key) already exists, and returns what it inserted.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable
from datetime import datetime
from typing import NamedTuple, TypeVar

import orjson
from django.db import OperationalError, connection, transaction

from events.models import Event, EventTypeDaily

_ALPHABET = b"0123456789abcdefghijklmnopqrstuvwxyz"
# Maps every byte to a base36 digit. 256 is not a multiple of 36, so four digits are 8/7 as
# likely as the rest: ~82 bits of randomness per id instead of ~83, still unguessable.
_BYTE_TO_BASE36 = bytes(_ALPHABET[b % 36] for b in range(256))
_RANDOM_LEN = 16
_DEADLOCK_SQLSTATES = {"40P01", "40001"}
_ATTEMPTS = 3
# Rows per (workspace, type, day) counter (events.models.EventTypeDaily): enough that the few
# concurrent batches of one workspace rarely pick the same one.
COUNTER_SHARDS = 8
T = TypeVar("T")


class Row(NamedTuple):
    customer_id: str
    type: str
    timestamp: datetime
    properties_json: bytes
    idempotency_key: str | None


def new_event_ids(count: int) -> list[str]:
    """`count` evt_ ids shaped like perly.ids.new_id, made in one go (new_id costs ~15 µs each)."""
    millis = int(time.time() * 1000)
    digits = []
    for _ in range(10):
        millis, rem = divmod(millis, 36)
        digits.append(chr(_ALPHABET[rem]))
    prefix = "evt_" + "".join(reversed(digits))
    randoms = os.urandom(count * _RANDOM_LEN).translate(_BYTE_TO_BASE36).decode()
    return [prefix + randoms[i : i + _RANDOM_LEN] for i in range(0, count * _RANDOM_LEN, _RANDOM_LEN)]


# pg_advisory_xact_lock key space for "ingestion into a workspace" (the first int4 of the pair;
# the second is hashtext(workspace_id)). Ingestion holds it shared from its customer lookup to its
# commit; a customer purge's last sweep takes it exclusively (see purge_sweep_lock).
_INGEST_LOCK_SPACE = 0x65767473  # "evts"


def lock_workspace_for_ingest(workspace_id: str) -> None:
    """Inside the ingestion transaction, before the customer lookup: a shared advisory lock.

    It replaces the events -> customers foreign key (whose per-row trigger, a lookup and a row
    lock per event at commit, cost about a third of the INSERT). A purge's final sweep takes the
    same lock exclusively, so it waits for every batch that may have resolved the customer before
    its soft delete, and every later batch resolves after the soft delete and rejects the events:
    no event can outlive its customer. One in-memory lock per batch, nothing written."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_xact_lock_shared(%s, hashtext(%s))", [_INGEST_LOCK_SPACE, workspace_id]
        )


def purge_sweep_lock(workspace_id: str) -> None:
    """Inside a purge's final transaction: wait for in-flight batches of the workspace (exclusive)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", [_INGEST_LOCK_SPACE, workspace_id])


def ingest_transaction(workspace_id: str, work: Callable[[], T]) -> T:
    """Run `work()` (customer lookup + insert_rows) in one transaction holding the workspace's
    shared ingest lock, all-or-nothing. Retried whole when lost to a deadlock."""
    for attempt in range(_ATTEMPTS):
        try:
            with transaction.atomic():
                lock_workspace_for_ingest(workspace_id)
                return work()
        except OperationalError as exc:
            if (
                getattr(exc.__cause__, "sqlstate", None) not in _DEADLOCK_SQLSTATES
                or attempt == _ATTEMPTS - 1
            ):
                raise
    raise AssertionError("unreachable")


# The inserted rows also add to their (type, UTC day) counters in the same statement: no second
# round trip and no second pass over the batch in Python. Counters are upserted in one global
# (type, day) order, so two batches touching the same counters queue instead of deadlocking.
_INSERT_SQL = """
WITH inserted AS (
    INSERT INTO {table} (id, workspace_id, customer_id, type, "timestamp", properties, idempotency_key,
                         received_at)
    SELECT r->>0, %(workspace)s, r->>1, r->>2, (r->>3)::timestamptz, r->4, r->>5, %(received_at)s
    FROM jsonb_array_elements(%(rows)s::jsonb) AS r
    ON CONFLICT (workspace_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
    RETURNING customer_id, type, "timestamp"
), counted AS (
    {count_sql}
)
SELECT customer_id FROM inserted
"""

# Add (or, with negative counts, take away) events to their (workspace, type, day) counters from
# a `(type, "timestamp")` row source named {source}. Grouped and ordered in the "C" collation:
# the database's default one compares with strcoll, and sorting a batch's 1,000 types with it
# cost ~8 ms of the statement's ~45 (any fixed order prevents deadlocks; equality is the same).
_COUNT_SQL = """
    INSERT INTO {daily} AS d (workspace_id, type, day, shard, count, last_seen_at)
    SELECT %(workspace)s, type COLLATE "C", ("timestamp" AT TIME ZONE 'UTC')::date, %(shard)s,
           {sign} count(*), max("timestamp")
    FROM {source}
    GROUP BY 2, 3
    ORDER BY 2, 3
    ON CONFLICT (workspace_id, type, day, shard) DO UPDATE
    SET count = d.count + excluded.count, last_seen_at = GREATEST(d.last_seen_at, excluded.last_seen_at)
"""


def _count_sql(source: str, sign: str = "") -> str:
    daily = connection.ops.quote_name(EventTypeDaily._meta.db_table)
    return _COUNT_SQL.format(daily=daily, source=source, sign=sign)


def insert_rows(workspace_id: str, rows: list[Row], received_at: datetime) -> list[str]:
    """Store `rows` (keys already unique within the batch) inside ingest_transaction; return the
    customer id of each row actually inserted (a key already stored is skipped)."""
    if not rows:
        return []
    # One statement whose rows travel as a single JSON document (an array of arrays, parsed
    # once as jsonb): one round trip, a constant query text, and orjson's C encoder instead of
    # psycopg adapting thousands of values one by one (its text-array dumper escapes each string
    # with a regex: a third of the request). Properties are already serialized; orjson.Fragment
    # embeds them as they are.
    document = orjson.dumps(
        [
            (event_id, row.customer_id, row.type, row.timestamp, orjson.Fragment(row.properties_json),
             row.idempotency_key)
            for event_id, row in zip(new_event_ids(len(rows)), rows, strict=True)
        ]
    )  # fmt: skip
    sql = _INSERT_SQL.format(
        table=connection.ops.quote_name(Event._meta.db_table), count_sql=_count_sql("inserted")
    )
    with connection.cursor() as cursor:
        cursor.execute(
            sql,
            {
                "workspace": workspace_id,
                "received_at": received_at,
                "rows": document.decode(),
                "shard": random.randrange(COUNTER_SHARDS),  # spreads row locks; not a secret
            },
        )
        return [row[0] for row in cursor.fetchall()]


_DELETE_SQL = """
WITH deleted AS (
    DELETE FROM {table} WHERE workspace_id = %(workspace)s AND {match}
    RETURNING type, "timestamp"
), counted AS (
    {count_sql}
)
SELECT count(*) FROM deleted
"""


def delete_rows(workspace_id: str, *, ids: list[str] | None = None, customer_id: str | None = None) -> int:
    """Delete these events (by id, or all of one customer's) of one workspace and take them off
    the daily type counters, in one statement. Emptied days stay until pruned (their
    last_seen_at may then name an event already deleted: the counter is a tally, not an index)."""
    if ids is not None:
        if not ids:
            return 0
        match, value = "id = ANY(%(value)s)", ids
    else:
        match, value = "customer_id = %(value)s", customer_id
    sql = _DELETE_SQL.format(
        table=connection.ops.quote_name(Event._meta.db_table),
        match=match,
        count_sql=_count_sql("deleted", sign="-"),
    )
    with connection.cursor() as cursor:
        cursor.execute(
            sql, {"workspace": workspace_id, "value": value, "shard": random.randrange(COUNTER_SHARDS)}
        )
        return cursor.fetchone()[0]
