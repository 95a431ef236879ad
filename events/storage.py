"""Writing a validated batch: one INSERT ... ON CONFLICT DO NOTHING statement.

A batch is stored all-or-nothing in one transaction, skipping rows whose
(workspace, idempotency_key) already exists, and returns what it inserted.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from datetime import datetime
from typing import NamedTuple, TypeVar

import orjson
from django.db import OperationalError, connection, transaction

from events.models import Event

_ALPHABET = b"0123456789abcdefghijklmnopqrstuvwxyz"
# Maps every byte to a base36 digit. 256 is not a multiple of 36, so four digits are 8/7 as
# likely as the rest: ~82 bits of randomness per id instead of ~83, still unguessable.
_BYTE_TO_BASE36 = bytes(_ALPHABET[b % 36] for b in range(256))
_RANDOM_LEN = 16
_DEADLOCK_SQLSTATES = {"40P01", "40001"}
_ATTEMPTS = 3
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


_INSERT_SQL = """
INSERT INTO {table} (id, workspace_id, customer_id, type, "timestamp", properties, idempotency_key,
                     received_at)
SELECT r->>0, %s, r->>1, r->>2, (r->>3)::timestamptz, r->4, r->>5, %s
FROM jsonb_array_elements(%s::jsonb) AS r
ON CONFLICT (workspace_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
RETURNING customer_id
"""


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
    sql = _INSERT_SQL.format(table=connection.ops.quote_name(Event._meta.db_table))
    with connection.cursor() as cursor:
        cursor.execute(sql, [workspace_id, received_at, document.decode()])
        return [row[0] for row in cursor.fetchall()]
