"""A per-workspace counter bumped whenever scores are written, so cached reads (the summary)
see a rescore at once and otherwise expire after a short TTL."""

from __future__ import annotations

import logging

from django.core.cache import cache

from perly import response_cache

logger = logging.getLogger("perly.health")


def _key(workspace_id: str) -> str:
    return f"health:generation:{workspace_id}"


def current(workspace_id: str) -> int:
    try:
        return int(cache.get(_key(workspace_id)) or 0)
    except Exception as exc:  # a cache outage must not break reads
        logger.warning("health: cache unavailable: %s", exc)
        return -1


def bump(workspace_id: str) -> None:
    # Scores are mirrored on the customer rows, so cached customer responses are stale too.
    response_cache.invalidate_workspace(workspace_id)
    try:
        try:
            cache.incr(_key(workspace_id))
        except ValueError:  # not set yet
            cache.add(_key(workspace_id), 1, timeout=None)
    except Exception as exc:
        logger.warning("health: cache unavailable, summary may lag up to its TTL: %s", exc)


def customer_deleted(workspace_id: str, customer_id: str) -> None:
    """customers.hooks listener: the cached summary must stop counting a deleted customer at
    once, not after its TTL."""
    bump(workspace_id)
