"""API key scopes: `<resource>:read` or `<resource>:write`; write implies read."""

from __future__ import annotations

RESOURCES = ("customers", "health", "events", "integrations", "webhooks")
ALL_SCOPES = tuple(f"{r}:{a}" for r in RESOURCES for a in ("read", "write"))
SHORTHANDS = {
    "read": tuple(f"{r}:read" for r in RESOURCES),
    "write": tuple(f"{r}:write" for r in RESOURCES),
}


class InvalidScope(ValueError):
    pass


def normalize_scopes(values: list[str] | tuple[str, ...] | str) -> list[str]:
    """Validate and canonicalize a scope list; raises InvalidScope naming the bad entry."""
    if isinstance(values, str):
        values = [v for v in values.split(",")]
    result: set[str] = set()
    for raw in values:
        scope = raw.strip()
        if scope in SHORTHANDS:
            result.update(SHORTHANDS[scope])
        elif scope in ALL_SCOPES:
            result.add(scope)
        else:
            raise InvalidScope(
                f"Unknown scope {scope!r}. Valid scopes: read, write, {', '.join(ALL_SCOPES)}."
            )
    if not result:
        raise InvalidScope("At least one scope is required.")
    return sorted(result)


def effective_scopes(scopes: list[str]) -> frozenset[str]:
    """The scopes a key can use: write grants read."""
    granted = set()
    for scope in scopes:
        for expanded in SHORTHANDS.get(scope, (scope,)):
            granted.add(expanded)
            resource, _, action = expanded.partition(":")
            if action == "write":
                granted.add(f"{resource}:read")
    return frozenset(granted)
