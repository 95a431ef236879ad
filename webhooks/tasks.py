"""Webhook tasks (queue "webhooks"): take ids, call one service, return a short outcome."""

from __future__ import annotations

from celery import shared_task

from webhooks import delivery


@shared_task(acks_late=True, ignore_result=True, soft_time_limit=90, time_limit=120)
def deliver_message(message_id: str) -> str:
    return delivery.webhook_message_deliver(message_id=message_id)


@shared_task(ignore_result=True)
def sweep_due_messages() -> str:
    return f"queued {delivery.webhook_messages_sweep()}"


@shared_task(ignore_result=True)
def prune_messages() -> str:
    return f"pruned {delivery.webhook_messages_prune()}"
