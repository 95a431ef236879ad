"""Re-encrypt every secret stored at rest under the first PERLY_ENCRYPTION_KEYS key.

Key rotation (docs/operations.md): prepend a new key to PERLY_ENCRYPTION_KEYS everywhere, run
this, then drop the old key. Safe to run again at any time (values already under the first key
are left alone) and while the service runs: each value is swapped with a conditional UPDATE,
so a secret rotated by a user meanwhile is never overwritten with the older one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cryptography.fernet import InvalidToken
from django.apps import apps
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from perly.crypto import is_current_token, reset_keys_cache, rotate_token

# Every encrypted column: (app_label.Model, field). A new one must be added here.
ENCRYPTED_COLUMNS: tuple[tuple[str, str], ...] = (
    ("webhooks.WebhookEndpoint", "secret_encrypted"),
    ("webhooks.WebhookEndpoint", "previous_secret_encrypted"),
    ("integrations.Integration", "credentials_encrypted"),
)


@dataclass
class ColumnReport:
    label: str
    rotated: int = 0
    current: int = 0
    changed_meanwhile: int = 0
    unreadable: list[str] = field(default_factory=list)

    def line(self, dry_run: bool) -> str:
        verb = "would re-encrypt" if dry_run else "re-encrypted"
        return (
            f"{self.label}: {self.rotated} {verb}, {self.current} already current, "
            f"{self.changed_meanwhile} changed meanwhile, {len(self.unreadable)} unreadable"
        )


def reencrypt_column(model_label: str, field_name: str, *, batch_size: int, dry_run: bool) -> ColumnReport:
    model = apps.get_model(model_label)
    manager = model._base_manager  # every row, whatever the default manager hides
    report = ColumnReport(f"{model_label}.{field_name}")
    last_pk = None
    while True:
        rows = manager.exclude(**{f"{field_name}__isnull": True}).exclude(**{field_name: ""}).order_by("pk")
        if last_pk is not None:
            rows = rows.filter(pk__gt=last_pk)
        batch = list(rows.values_list("pk", field_name)[:batch_size])
        if not batch:
            return report
        last_pk = batch[-1][0]
        with transaction.atomic():  # one commit per batch
            for pk, token in batch:
                if is_current_token(token):
                    report.current += 1
                    continue
                try:
                    new_token = rotate_token(token)
                except InvalidToken:
                    report.unreadable.append(str(pk))
                    continue
                if dry_run or manager.filter(pk=pk, **{field_name: token}).update(**{field_name: new_token}):
                    report.rotated += 1
                else:
                    report.changed_meanwhile += 1  # rewritten since we read it, under the new key


class Command(BaseCommand):
    help = (
        "Re-encrypt webhook endpoint secrets and integration credentials under the first key of "
        "PERLY_ENCRYPTION_KEYS (run after prepending a new key; safe to repeat)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--batch-size", type=int, default=500, help="Rows per transaction (500).")
        parser.add_argument("--dry-run", action="store_true", help="Count what would change; write nothing.")

    def handle(self, *, batch_size: int, dry_run: bool, **options):
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        reset_keys_cache()  # the keys as configured for this process, not a cached older list
        reports = [
            reencrypt_column(model, field_name, batch_size=batch_size, dry_run=dry_run)
            for model, field_name in ENCRYPTED_COLUMNS
        ]
        for report in reports:
            self.stdout.write(report.line(dry_run))
        verb = "would be re-encrypted" if dry_run else "re-encrypted"
        total = sum(r.rotated for r in reports)
        current = sum(r.current for r in reports)
        self.stdout.write(f"Total: {total} {verb}, {current} already current.")
        unreadable = [f"{r.label} pk={pk}" for r in reports for pk in r.unreadable]
        if unreadable:
            raise CommandError(
                f"{len(unreadable)} value(s) could not be decrypted with any key in PERLY_ENCRYPTION_KEYS "
                f"({', '.join(unreadable[:20])}). Keep the key that encrypted them in the list and run again."
            )
