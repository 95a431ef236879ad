"""Reads for the customers API."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import orjson
from django.db.models import CharField, QuerySet
from django.db.models.functions import Cast

from customers.api.serializers import REPRESENTATION_FIELDS, customer_representation
from customers.models import Customer

# Read as the database's text: timestamps are reformatted by slicing and metadata is parsed by
# orjson, instead of datetime objects formatted again and the stdlib json decoder.
_AS_TEXT = ("metadata", "churned_at", "health_computed_at", "created_at", "updated_at")
_PLAIN = tuple(name for name in REPRESENTATION_FIELDS if name not in _AS_TEXT)
ROW_KEYS = _PLAIN + _AS_TEXT
_METADATA = ROW_KEYS.index("metadata")


def customer_rows(queryset: QuerySet) -> QuerySet:
    """A list page's rows as tuples in ROW_KEYS order, metadata and timestamps as text.

    Parsing two or three timestamps per row into datetimes only to format them again was about a
    third of a 100-customer page's Python time; the text (UTC on every connection Django opens)
    is reformatted by perly's `iso` with a slice instead."""
    casts = [Cast(name, output_field=CharField()) for name in _AS_TEXT]
    return queryset.values_list(*_PLAIN, *casts)


def customer_page_representation(rows: Iterable[tuple]) -> Iterator[dict]:
    for row in rows:
        fields = dict(zip(ROW_KEYS, row, strict=True))
        metadata = row[_METADATA]
        fields["metadata"] = orjson.loads(metadata) if metadata else {}
        yield customer_representation(fields)


def deleted_customer_ids(*, workspace_id: str) -> QuerySet:
    """The workspace's deleted customers whose data the purge has not removed yet, as a subquery.

    "Deleted" means gone from every read at once: a read of rows kept per customer (events, ...)
    excludes these; the purge only reclaims the space later. Cheap: the partial index
    customer_deleted_idx holds only deleted rows, and there are few while purges run."""
    return Customer.all_objects.filter(workspace_id=workspace_id, deleted_at__isnull=False).values("id")


def live_customer_ids(*, workspace_id: str, ids: Iterable[str]) -> set[str]:
    """Which of `ids` are customers of the workspace that are not deleted (one query)."""
    ids = set(ids)
    if not ids:
        return set()
    return set(Customer.objects.filter(workspace_id=workspace_id, pk__in=ids).values_list("id", flat=True))
