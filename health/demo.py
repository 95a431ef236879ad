"""Demo health for `manage.py seed_demo`: six weeks of history backfilled from the demo events."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from events.models import Event
from health import services
from perly.models import Workspace

HISTORY_DAYS = 42


def seed(workspace: Workspace) -> None:
    if not Event.objects.filter(workspace_id=workspace.id).exists():
        return  # the events demo did not run: nothing to score
    today = timezone.now().date()
    services.health_backfill(
        start=today - timedelta(days=HISTORY_DAYS),
        end=today - timedelta(days=1),
        workspace_slug=workspace.slug,
    )
    services.health_rollup(workspace_slug=workspace.slug)  # today, and the current scores
