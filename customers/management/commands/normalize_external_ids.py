"""Rewrite stored external ids in their normalized form (customers.external_ids), once, after
upgrading to the release that normalizes them on every read. Ids written before then may be in
NFD or carry whitespace, and no longer match what ingestion and the filter look up. Two live
customers whose ids normalize to the same text are left untouched and listed: a person decides
which one keeps the id."""

from __future__ import annotations

from django.core.management.base import BaseCommand
from django.db import IntegrityError, transaction

from customers.external_ids import normalize_external_id
from customers.models import Customer


class Command(BaseCommand):
    help = "Store every customer's external_id in its normalized form (NFC, trimmed)."

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="Report only; change nothing.")

    def handle(self, *args, dry_run: bool = False, **options):
        changed, conflicts = 0, []
        rows = Customer.objects.exclude(external_id=None).values_list("pk", "workspace_id", "external_id")
        for pk, workspace_id, external_id in rows.iterator(chunk_size=2000):
            normalized = normalize_external_id(external_id)
            if normalized == external_id:
                continue
            taken = Customer.objects.filter(workspace_id=workspace_id, external_id=normalized).exclude(pk=pk)
            if taken.exists():
                conflicts.append((pk, external_id, taken.values_list("pk", flat=True).first()))
                continue
            if not dry_run:
                try:
                    with transaction.atomic():
                        Customer.objects.filter(pk=pk).update(external_id=normalized)
                except IntegrityError:  # taken since the check above
                    conflicts.append((pk, external_id, None))
                    continue
            changed += 1
        verb = "Would normalize" if dry_run else "Normalized"
        self.stdout.write(f"{verb} {changed} external id(s).")
        for pk, external_id, other in conflicts:
            self.stdout.write(
                f"Conflict: {pk} has external_id {external_id!r}, which normalizes to the id of "
                f"{other or 'another customer'}; left unchanged."
            )
