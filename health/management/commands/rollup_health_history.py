"""Snapshot health history by hand: today as of now, one day, or a backfilled range."""

from __future__ import annotations

from datetime import date

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from health import services
from perly.models import Workspace

MAX_RANGE_DAYS = 730


def _date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise CommandError(f"Not a date (YYYY-MM-DD): {value!r}") from None


class Command(BaseCommand):
    help = (
        "Upsert one health snapshot per customer per UTC day. No date: rescore now and snapshot today. "
        "--date D or --from D --to D: backfill from the raw events as they stood at the end of each day "
        "(re-running a day replaces its snapshot)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--date", type=_date)
        parser.add_argument("--from", dest="start", type=_date)
        parser.add_argument("--to", dest="end", type=_date)
        parser.add_argument("--workspace", help="A workspace slug (default: every workspace).")

    def handle(self, *args, date=None, start=None, end=None, workspace=None, **options):
        if workspace and not Workspace.objects.filter(slug=workspace).exists():
            raise CommandError(f"No such workspace: {workspace!r}")
        if date and (start or end):
            raise CommandError("Use either --date or --from/--to.")
        if (start is None) != (end is None):
            raise CommandError("--from and --to go together.")
        today = timezone.now().date()
        if date:
            start = end = date
        if start is None:
            count = services.health_rollup(workspace_slug=workspace)
            self.stdout.write(f"Snapshotted {count} customer(s) for {today}.")
            return
        if start > end:
            raise CommandError("--from must be on or before --to.")
        if end > today:
            raise CommandError("Cannot snapshot a future day.")
        if (end - start).days + 1 > MAX_RANGE_DAYS:
            raise CommandError(f"At most {MAX_RANGE_DAYS} days at once.")
        count = services.health_backfill(start=start, end=end, workspace_slug=workspace)
        self.stdout.write(f"Snapshotted {count} customer-day(s) from {start} to {end}.")
