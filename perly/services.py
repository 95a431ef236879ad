from __future__ import annotations

from perly.models import Workspace


def workspace_create(*, slug: str, name: str = "", is_test: bool = False) -> Workspace:
    return Workspace.objects.create(slug=slug, name=name or slug, is_test=is_test)
