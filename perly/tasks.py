from __future__ import annotations

from celery import shared_task

from perly.services import idempotency_records_prune


@shared_task
def prune_idempotency_records() -> str:
    return f"pruned {idempotency_records_prune()}"
