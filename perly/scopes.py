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


# --- What a key sees of objects embedded in another resource's response -----------------------
# The rule, decided once: a scope never reads through another resource's endpoint what that
# resource's own endpoint refuses it. An object embedded in a response (an at-risk entry's
# customer, a webhook payload's `data.object`) is shown in full only to a key holding the read
# scope of the object's own resource; any other key gets its reference (REFERENCE_FIELDS, the
# `cus_` id for a customer). A filter that matches on another resource's fields (the health
# summary's `owner`, an email) needs that resource's read scope too (HasScope, `param_scopes`).
# A customer's own `health` summary is one of the customer's attributes, not an embedded object.
EMBEDDED_SCOPES = {
    "customer": "customers:read",
    "health_score": "health:read",
    "integration": "integrations:read",
    "sync_run": "integrations:read",
    "webhook_endpoint": "webhooks:read",
}
REFERENCE_FIELDS = {
    "customer": ("id", "object", "deleted"),
    "health_score": ("object", "customer"),
    "integration": ("id", "object"),
    "sync_run": ("id", "object", "integration"),
    "webhook_endpoint": ("id", "object"),
}
# The field naming the customer an object is about. A deleted customer's objects are shown by
# reference to every key: "deleted" means gone from every read at once, before the purge runs.
CUSTOMER_FIELD = {"customer": "id", "health_score": "customer"}
# An object type nobody listed is shown by reference only: a new type cannot leak by default.
_UNLISTED_REFERENCE = ("id", "object")


def may_read_embedded(scopes: frozenset[str], object_type: str) -> bool:
    scope = EMBEDDED_SCOPES.get(object_type)
    return scope is not None and scope in scopes


def reference(object_type: str, data: dict) -> dict:
    """The part of an object that only names it."""
    fields = REFERENCE_FIELDS.get(object_type, _UNLISTED_REFERENCE)
    return {name: data[name] for name in fields if name in data}


def embedded(scopes: frozenset[str], object_type: str, data: dict) -> dict:
    """`data` (an object of `object_type`) as a key with `scopes` may see it inside another
    resource's response."""
    return data if may_read_embedded(scopes, object_type) else reference(object_type, data)


def event_object(event: dict) -> dict | None:
    data = event.get("data")
    obj = data.get("object") if isinstance(data, dict) else None
    return obj if isinstance(obj, dict) else None


def event_customer(event: dict) -> str | None:
    """The customer a webhook event's object is about, if any."""
    obj = event_object(event)
    field = CUSTOMER_FIELD.get(str(obj.get("object"))) if obj is not None else None
    value = obj.get(field) if field is not None else None
    return value if isinstance(value, str) else None


def embedded_event(scopes: frozenset[str], event: dict, gone_customers: frozenset[str] = frozenset()) -> dict:
    """A webhook event as a key with `scopes` may read it back: its `data.object` by the rule
    above (and by reference only when it is about a customer in `gone_customers`), with
    `previous_attributes` (old values of the same object) withheld with it."""
    obj = event_object(event)
    if obj is None:
        return event
    object_type = str(obj.get("object"))
    gone = event_customer(event) in gone_customers
    if may_read_embedded(scopes, object_type) and not gone:
        return event
    data = event["data"]
    previous = data.get("previous_attributes")
    return {
        **event,
        "data": {
            **data,
            "object": reference(object_type, obj),
            "previous_attributes": None if previous is None else {},
        },
    }
