"""The hook ingestion calls once per stored batch, with the customers it touched.

The health app subscribes to mark those customers for rescoring. Listeners must be cheap:
they run inside the request, after the batch is committed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

BatchListener = Callable[[str, set[str]], None]
_listeners: list[BatchListener] = []


def on_events_ingested(listener: BatchListener) -> BatchListener:
    """Subscribe `listener(workspace_id, customer_ids)`; usable as a decorator."""
    if listener not in _listeners:
        _listeners.append(listener)
    return listener


def notify_events_ingested(workspace_id: str, customer_ids: Iterable[str]) -> None:
    touched = set(customer_ids)
    if not touched:
        return
    for listener in _listeners:
        listener(workspace_id, touched)
