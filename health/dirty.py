""" "Needs rescoring" marks: a Redis set per workspace, or DirtyCustomer rows without Redis.

Marking is one SADD per batch (ingestion's hot path); draining pops members with SPOP count, so
two workers never take the same mark. A debounce key (SET NX with a short expiry) keeps the
number of queued "rescore dirty" tasks to at most one per interval, however many batches arrive.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable

import redis
from django.db import transaction

from health.models import DirtyCustomer
from perly.redis_client import get_redis

logger = logging.getLogger("perly.health")

WORKSPACES_KEY = "health:dirty:workspaces"
DEBOUNCE_KEY = "health:dirty:scheduled"
DEBOUNCE_SECONDS = 2


def _set_key(workspace_id: str) -> str:
    return f"health:dirty:{workspace_id}"


def mark_dirty(workspace_id: str, customer_ids: Iterable[str]) -> None:
    ids = list(customer_ids)
    if not ids:
        return
    try:
        pipe = get_redis().pipeline(transaction=False)
        pipe.sadd(_set_key(workspace_id), *ids)
        pipe.sadd(WORKSPACES_KEY, workspace_id)
        pipe.execute()
        return
    except redis.RedisError as exc:
        logger.warning("health: Redis unavailable for dirty marks, using the database: %s", exc)
    DirtyCustomer.objects.bulk_create(
        [DirtyCustomer(customer_id=customer_id, workspace_id=workspace_id) for customer_id in ids],
        ignore_conflicts=True,
    )


def pop_dirty(limit: int = 1000) -> list[tuple[str, list[str]]]:
    """Take up to `limit` marks as [(workspace_id, [customer_id, ...])], Redis first."""
    taken: list[tuple[str, list[str]]] = []
    remaining = limit
    client = get_redis()
    try:
        for raw in client.smembers(WORKSPACES_KEY):
            workspace_id = raw.decode()
            members = client.spop(_set_key(workspace_id), remaining) or []
            if not members:
                client.srem(WORKSPACES_KEY, workspace_id)
                # A mark may have landed between SPOP and SREM: keep the workspace listed.
                if client.scard(_set_key(workspace_id)):
                    client.sadd(WORKSPACES_KEY, workspace_id)
                continue
            taken.append((workspace_id, [member.decode() for member in members]))
            remaining -= len(members)
            if remaining <= 0:
                return taken
    except redis.RedisError as exc:
        logger.warning("health: Redis unavailable while draining dirty marks: %s", exc)
    if remaining > 0:
        taken.extend(_pop_db(remaining))
    return taken


def _pop_db(limit: int) -> list[tuple[str, list[str]]]:
    with transaction.atomic():
        rows = list(
            DirtyCustomer.objects.select_for_update(skip_locked=True)
            .order_by("marked_at")
            .values_list("workspace_id", "customer_id")[:limit]
        )
        if not rows:
            return []
        DirtyCustomer.objects.filter(customer_id__in=[customer_id for _, customer_id in rows]).delete()
    grouped: dict[str, list[str]] = {}
    for workspace_id, customer_id in rows:
        grouped.setdefault(workspace_id, []).append(customer_id)
    return list(grouped.items())


def has_dirty() -> bool:
    try:
        if get_redis().scard(WORKSPACES_KEY):
            return True
    except redis.RedisError:
        pass
    return DirtyCustomer.objects.exists()


def claim_schedule_slot() -> bool:
    """True for the first caller in each debounce interval (and while Redis is unreachable)."""
    try:
        return bool(get_redis().set(DEBOUNCE_KEY, "1", nx=True, ex=DEBOUNCE_SECONDS))
    except redis.RedisError:
        return True


def clear_schedule_slot() -> None:
    """Called when a drain starts: marks arriving from now on may schedule the next drain."""
    with contextlib.suppress(redis.RedisError):
        get_redis().delete(DEBOUNCE_KEY)
