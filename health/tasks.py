"""Health tasks: thin wrappers over health.services (routed to the `health` queue)."""

from __future__ import annotations

from datetime import timedelta

from celery import shared_task
from django.utils import timezone

from health import backtests, dirty, services


@shared_task
def rescore_dirty() -> str:
    """Drain the "needs rescoring" marks. Several drains may run at once: SPOP hands each mark
    to one of them, and a score is only replaced by a newer computation (health.rescore_sql)."""
    dirty.clear_schedule_slot()
    count = services.rescore_dirty_drain()
    if dirty.has_dirty() and dirty.claim_schedule_slot():
        rescore_dirty.delay()
    return f"rescored {count}"


@shared_task
def rescore_workspace(workspace_id: str) -> str:
    return f"rescored {services.rescore_customers(workspace_id=workspace_id)}"


@shared_task
def nightly_rollup() -> str:
    """00:15 UTC: rescore everyone as of now and file it as the snapshot of the day that ended."""
    now = timezone.now()
    yesterday = (now - timedelta(days=1)).date()
    return f"rolled up {services.health_rollup(day=yesterday, now=now)}"


@shared_task
def run_backtest(backtest_id: str) -> str:
    return backtests.backtest_run(backtest_id=backtest_id)


@shared_task
def run_model_fit(fit_id: str) -> str:
    return backtests.fit_run(fit_id=fit_id)


@shared_task
def reap_stale_health_jobs() -> str:
    return f"reaped {backtests.health_jobs_reap_stale()}"
