"""Webhook services. `webhook_event_publish` is the outbox entry point every app calls inside
the transaction that made the change it describes."""

from __future__ import annotations


def webhook_event_publish(
    *,
    workspace_id: str,
    event_type: str,
    data_object: dict,
    previous_attributes: dict | None = None,
) -> None:
    """Record a webhook event for every subscribed endpoint (implemented by the webhooks issue)."""
    return None
