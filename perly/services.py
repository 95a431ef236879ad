from __future__ import annotations

from perly.models import Workspace


def workspace_create(*, slug: str, name: str = "", is_test: bool = False) -> Workspace:
    return Workspace.objects.create(slug=slug, name=name or slug, is_test=is_test)


def idempotency_records_prune(*, batch_size: int = 5000) -> int:
    """Delete idempotency records past their 24 h replay window, in batches (no long locks)."""
    from datetime import timedelta

    from django.conf import settings
    from django.utils import timezone

    from perly.models import IdempotencyRecord

    cutoff = timezone.now() - timedelta(hours=settings.PERLY_IDEMPOTENCY_TTL_HOURS)
    total = 0
    while True:
        ids = list(
            IdempotencyRecord.objects.filter(created_at__lt=cutoff).values_list("pk", flat=True)[:batch_size]
        )
        if not ids:
            return total
        total += IdempotencyRecord.objects.filter(pk__in=ids).delete()[0]
