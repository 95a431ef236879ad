"""Export one workspace's rows as a Django fixture (JSON lines) that `manage.py loaddata` restores.

Used to restore a single workspace from a full backup (docs/operations.md, "Restoring one
workspace"): restore the backup into a scratch database, export the workspace from there, load
it into production. Every model that belongs to a workspace (directly or through a parent row)
is found from the model graph, so a new app's tables are included without editing this file.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime, time
from itertools import islice

from django.apps import apps
from django.core import serializers
from django.core.management.base import BaseCommand, CommandError
from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import Model

from perly.models import Workspace

# Derived, short-lived state a restore must not bring back: idempotency replays (24 h) and
# "needs rescoring" marks (run recompute_health after a restore instead).
SKIPPED = {"perly.IdempotencyRecord", "health.DirtyCustomer"}
CHUNK = 2000


def workspace_path(model: type[Model], depth: int = 0) -> str | None:
    """The ORM lookup from `model` to its workspace id ("workspace_id", "message__workspace_id"...)."""
    fields = {f.name: f for f in model._meta.concrete_fields}
    workspace = fields.get("workspace")
    if workspace is not None and workspace.is_relation and workspace.related_model is Workspace:
        return "workspace_id"
    if depth >= 3:
        return None
    for field in model._meta.concrete_fields:
        if field.is_relation and field.many_to_one and field.related_model is not Workspace:
            parent = workspace_path(field.related_model, depth + 1)
            if parent is not None:
                return f"{field.name}__{parent}"
    return None


def workspace_models() -> list[tuple[type[Model], str]]:
    """Every model holding workspace rows with its lookup, parents before children."""
    ordered = serializers.sort_dependencies([(config, None) for config in apps.get_app_configs()])
    out = []
    for model in ordered:
        if model._meta.label in SKIPPED or model is Workspace or model._meta.proxy:
            continue
        path = workspace_path(model)
        if path is not None:
            out.append((model, path))
    return out


class _FullPrecisionEncoder(DjangoJSONEncoder):
    """Django's encoder cuts datetimes to milliseconds; a restore must give back what was stored."""

    def default(self, o):
        if isinstance(o, (datetime, time)):
            return o.isoformat()
        return super().default(o)


def write_rows(stream, objects: Iterable[Model]) -> int:
    """Write objects as `loaddata`'s JSON lines, a chunk at a time (events need not fit in memory)."""
    count = 0
    iterator = iter(objects)
    while chunk := list(islice(iterator, CHUNK)):
        for item in serializers.serialize("python", chunk):
            stream.write(json.dumps(item, cls=_FullPrecisionEncoder, ensure_ascii=False) + "\n")
        count += len(chunk)
    return count


class Command(BaseCommand):
    help = (
        "Write one workspace (its slug or id) and everything that belongs to it as JSON lines "
        "for `manage.py loaddata`. Prints a row count per model."
    )

    def add_arguments(self, parser):
        parser.add_argument("workspace", help="The workspace slug or id (ws_...).")
        parser.add_argument("--output", "-o", required=True, help="The file to write (.jsonl).")

    def handle(self, *, workspace: str, output: str, **options):
        found = (
            Workspace.objects.filter(slug=workspace).first() or Workspace.objects.filter(pk=workspace).first()
        )
        if found is None:
            raise CommandError(f"No workspace with slug or id '{workspace}'.")
        if not output.endswith(".jsonl"):
            raise CommandError("--output must end in .jsonl (loaddata picks the format from it).")
        total = 0
        with open(output, "w", encoding="utf-8") as stream:
            write_rows(stream, [found])
            for model, path in workspace_models():
                rows = model._base_manager.filter(**{path: found.pk}).order_by("pk")
                count = write_rows(stream, rows.iterator(chunk_size=CHUNK))
                self.stdout.write(f"{model._meta.label}: {count}")
                total += count
        self.stdout.write(f"Exported workspace {found.slug} ({found.pk}): {total + 1} rows to {output}")
