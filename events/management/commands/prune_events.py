"""`manage.py prune_events --before DATE [--workspace SLUG]`: delete old events in batches."""

from __future__ import annotations

from django import forms
from django.core.management.base import BaseCommand, CommandError

from customers.filtersets import DateOrDateTimeField
from events.services import events_prune
from perly.models import Workspace


class Command(BaseCommand):
    help = "Delete events whose timestamp is before DATE (5,000 per statement, no long locks)."

    def add_arguments(self, parser):
        parser.add_argument("--before", required=True, help="YYYY-MM-DD (midnight UTC) or ISO 8601 datetime.")
        parser.add_argument("--workspace", help="Only this workspace (its slug).")

    def handle(self, *args, before: str, workspace: str | None = None, **options):
        try:
            cutoff = DateOrDateTimeField().clean(before)
        except forms.ValidationError:
            raise CommandError(f"--before: '{before}' is not a date (YYYY-MM-DD) or ISO 8601 datetime.")
        if cutoff is None:
            raise CommandError("--before is required.")
        workspace_id = None
        if workspace is not None:
            workspace_id = Workspace.objects.filter(slug=workspace).values_list("id", flat=True).first()
            if workspace_id is None:
                raise CommandError(f"No workspace with slug '{workspace}'.")
        deleted = events_prune(before=cutoff, workspace_id=workspace_id)
        scope = f" in workspace '{workspace}'" if workspace else ""
        self.stdout.write(f"Deleted {deleted} events before {cutoff.isoformat()}{scope}.")
