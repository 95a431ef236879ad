from __future__ import annotations

from celery import shared_task

from integrations import services


# A big first sync can run long; it checkpoints every page, so the limits only bound a stuck run.
@shared_task(acks_late=True, soft_time_limit=4 * 3600, time_limit=4 * 3600 + 60)
def run_sync(sync_run_id: str) -> str:
    return services.sync_run_execute(sync_run_id=sync_run_id)


@shared_task
def enqueue_due_syncs() -> str:
    return f"queued {services.integrations_enqueue_due()}"


@shared_task
def reap_stale_sync_runs() -> str:
    failed, requeued = services.sync_runs_reap_stale()
    return f"failed {failed}, requeued {requeued}"
