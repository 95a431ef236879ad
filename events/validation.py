"""Validation of one ingested event, in plain Python: this runs 1,000 times per request.

No serializer objects, no exceptions on the happy path: `validate_event` returns either a
`Candidate` tuple or a `Rejection`. Every rejection code is part of the API (README, "Events").
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

import orjson

from customers.external_ids import normalize_external_id
from perly.ids import is_valid_id

MAX_BATCH = 1000
MAX_TYPE_LENGTH = 100
MAX_IDEMPOTENCY_KEY_LENGTH = 255
MAX_EXTERNAL_ID_LENGTH = 255
MAX_EVENT_BYTES = 32 * 1024
MAX_PROPERTIES_DEPTH = 5
MAX_FUTURE = timedelta(hours=24)

EVENT_FIELDS = frozenset(
    {"customer_id", "customer_external_id", "type", "timestamp", "properties", "idempotency_key"}
)
TYPE_RE = re.compile(r"[A-Za-z0-9_.:\-]{1,100}")

# code -> what it means; the OpenAPI description and the README list these.
REJECTION_CODES = {
    "parameter_missing": "A required field is missing (type, or both customer_id and customer_external_id).",
    "parameter_invalid": "A field has the wrong type or format, or the event is not a JSON object.",
    "parameter_unknown": "The event has a field this API does not know.",
    "parameters_exclusive": "Both customer_id and customer_external_id were given; send exactly one.",
    "customer_not_found": "No live customer in this workspace has that id or external_id.",
    "timestamp_too_far_in_future": "timestamp is more than 24 hours after the time received.",
    "properties_too_deep": f"properties nests more than {MAX_PROPERTIES_DEPTH} levels.",
    "event_too_large": f"The event serialized as compact JSON exceeds {MAX_EVENT_BYTES} bytes.",
}


class Rejection(NamedTuple):
    index: int
    code: str
    param: str | None
    message: str

    def as_dict(self) -> dict:
        return {"index": self.index, "code": self.code, "param": self.param, "message": self.message}


class Candidate(NamedTuple):
    """A valid event whose customer reference is not resolved yet."""

    index: int
    customer_id: str | None
    customer_external_id: str | None
    type: str
    timestamp: datetime
    properties_json: bytes
    idempotency_key: str | None


def _depth_exceeds(value: object, limit: int) -> bool:
    """True when `value` (a dict or list counting as one level) nests deeper than `limit`."""
    if limit <= 0:
        return True
    children = value.values() if isinstance(value, dict) else value
    return any(isinstance(child, (dict, list)) and _depth_exceeds(child, limit - 1) for child in children)


def parse_timestamp(raw: str) -> datetime | None:
    """ISO 8601 to an aware UTC datetime; no offset means UTC. None when unparseable."""
    try:
        parsed = datetime.fromisoformat(raw)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:  # year 1 with a positive offset
        return None


def validate_event(index: int, event: object, now: datetime) -> Candidate | Rejection:
    if type(event) is not dict:
        return Rejection(index, "parameter_invalid", None, f"events[{index}] must be a JSON object.")
    if not event.keys() <= EVENT_FIELDS:
        name = sorted(event.keys() - EVENT_FIELDS)[0]
        return Rejection(index, "parameter_unknown", name, f"Received unknown parameter: {name}.")

    customer_id = event.get("customer_id")
    external_id = event.get("customer_external_id")
    if customer_id is not None and external_id is not None:
        return Rejection(
            index,
            "parameters_exclusive",
            "customer_id",
            "Send exactly one of customer_id and customer_external_id, not both.",
        )
    if customer_id is not None:
        if not is_valid_id(customer_id, "cus"):
            return Rejection(
                index, "parameter_invalid", "customer_id", "customer_id must be a customer id (cus_...)."
            )
    elif external_id is not None:
        if type(external_id) is str:
            external_id = normalize_external_id(external_id) or ""  # as customers store it
        if type(external_id) is not str or not 1 <= len(external_id) <= MAX_EXTERNAL_ID_LENGTH:
            return Rejection(
                index,
                "parameter_invalid",
                "customer_external_id",
                f"customer_external_id must be a string of 1 to {MAX_EXTERNAL_ID_LENGTH} characters.",
            )
    else:
        return Rejection(
            index, "parameter_missing", "customer_id", "Send customer_id or customer_external_id."
        )

    event_type = event.get("type")
    if event_type is None:
        return Rejection(index, "parameter_missing", "type", "type is required.")
    if type(event_type) is not str or not TYPE_RE.fullmatch(event_type):
        return Rejection(
            index,
            "parameter_invalid",
            "type",
            f"type must be 1 to {MAX_TYPE_LENGTH} characters of letters, digits and _ . : -",
        )

    raw_timestamp = event.get("timestamp")
    if raw_timestamp is None:
        timestamp = now
    else:
        timestamp = parse_timestamp(raw_timestamp) if type(raw_timestamp) is str else None
        if timestamp is None:
            return Rejection(
                index,
                "parameter_invalid",
                "timestamp",
                "timestamp must be an ISO 8601 datetime, e.g. 2026-11-26T04:27:32Z.",
            )
        if timestamp - now > MAX_FUTURE:
            return Rejection(
                index,
                "timestamp_too_far_in_future",
                "timestamp",
                "timestamp is more than 24 hours in the future.",
            )

    properties = event.get("properties")
    if properties is None:
        properties = {}
    elif type(properties) is not dict:
        return Rejection(index, "parameter_invalid", "properties", "properties must be a JSON object.")
    try:
        properties_json = orjson.dumps(properties)
    except orjson.JSONEncodeError:  # nesting beyond orjson's recursion limit (254)
        return _too_deep(index)
    # Only a nested object or array can be too deep: counting brackets in the serialized bytes
    # (C speed) skips the walk for flat properties, the common case.
    if properties_json.count(b"{") + properties_json.count(b"[") > 1 and _depth_exceeds(
        properties, MAX_PROPERTIES_DEPTH
    ):
        return _too_deep(index)

    key = event.get("idempotency_key")
    if key is not None and (
        type(key) is not str or not 1 <= len(key) <= MAX_IDEMPOTENCY_KEY_LENGTH or "\x00" in key
    ):
        return Rejection(
            index,
            "parameter_invalid",
            "idempotency_key",
            f"idempotency_key must be a string of 1 to {MAX_IDEMPOTENCY_KEY_LENGTH} characters.",
        )

    # The other fields are bounded (about 700 bytes at most), so only a big properties needs
    # the exact measure of the whole event.
    if len(properties_json) > MAX_EVENT_BYTES - 1024 and len(orjson.dumps(event)) > MAX_EVENT_BYTES:
        return Rejection(
            index,
            "event_too_large",
            None,
            f"The event is larger than {MAX_EVENT_BYTES} bytes serialized; send smaller properties.",
        )
    if b"\\u0000" in properties_json:
        # PostgreSQL's jsonb cannot store the NUL character.
        return Rejection(
            index, "parameter_invalid", "properties", "properties strings may not contain the NUL character."
        )
    if external_id is not None and "\x00" in external_id:
        return Rejection(index, "customer_not_found", "customer_external_id", _not_found(external_id, True))
    return Candidate(index, customer_id, external_id, event_type, timestamp, properties_json, key)


def _too_deep(index: int) -> Rejection:
    return Rejection(
        index,
        "properties_too_deep",
        "properties",
        f"properties may nest at most {MAX_PROPERTIES_DEPTH} levels (properties itself is level 1).",
    )


def _not_found(reference: str, external: bool) -> str:
    if external:
        return f"No such customer: no customer with external_id '{reference[:255]}'."
    return f"No such customer: '{reference}'."


def customer_not_found(candidate: Candidate) -> Rejection:
    if candidate.customer_id is not None:
        return Rejection(
            candidate.index, "customer_not_found", "customer_id", _not_found(candidate.customer_id, False)
        )
    return Rejection(
        candidate.index,
        "customer_not_found",
        "customer_external_id",
        _not_found(candidate.customer_external_id, True),
    )
