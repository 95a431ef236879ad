"""Integration config defaults and the operational knobs read from settings (with defaults here,
so perly/settings.py needs no edit; tests override them with override_settings)."""

from __future__ import annotations

import os

from django.conf import settings

DEFAULTS = {"sync_interval_minutes": 60, "create_customers": True}
MIN_SYNC_INTERVAL_MINUTES = 15
MAX_SYNC_INTERVAL_MINUTES = 7 * 24 * 60
SYNC_HISTORY_LENGTH = 20


def scheduler_seconds() -> float:
    """How often beat looks for due syncs."""
    default = os.environ.get("INTEGRATIONS_SCHEDULER_SECONDS", "60")
    return float(getattr(settings, "INTEGRATIONS_SCHEDULER_SECONDS", default))


def stale_run_seconds() -> float:
    """A running run with no committed page for this long is presumed dead (its worker died).
    Longer than the worst page: 5 retries x the 120 s Retry-After cap."""
    return float(getattr(settings, "INTEGRATIONS_STALE_RUN_SECONDS", 900))


def lost_task_seconds() -> float:
    """A queued run not started after this long lost its task (broker restart): enqueue it again."""
    return float(getattr(settings, "INTEGRATIONS_LOST_TASK_SECONDS", 600))
