from __future__ import annotations

import orjson
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins
from rest_framework.exceptions import ParseError, UnsupportedMediaType
from rest_framework.response import Response

from customers.selectors import deleted_customer_ids
from events import services
from events.api.serializers import (
    EventBatchInputSerializer,
    EventBatchSerializer,
    EventSerializer,
    EventTypeSerializer,
    event_type_representation,
)
from events.filtersets import EventFilterSet
from events.models import Event, EventTypeDaily
from events.selectors import UnknownEventType, event_types_page
from events.validation import MAX_BATCH, MAX_EVENT_BYTES, REJECTION_CODES
from perly.api import WorkspaceScopedViewSet
from perly.errors import ApiError, invalid_parameter
from perly.middleware import charge_events, rate_limited_response
from perly.pagination import parse_limit

_CODES_DOC = "\n".join(f"- `{code}`: {meaning}" for code, meaning in REJECTION_CODES.items())
_INGEST_DOC = f"""Send 1 to {MAX_BATCH} events in one request (body at most 4 MiB, each event at most
{MAX_EVENT_BYTES} bytes serialized). A problem with the envelope (body not a JSON object, `events` missing,
not a list, empty or longer than {MAX_BATCH}) refuses the whole request with a 400 and stores nothing.
A problem with one event rejects that event alone; the others are stored, all of them committed before
the response. An `idempotency_key` already stored in this workspace (or repeated in the batch) makes the
event a duplicate: it is counted, not stored again.

The `events` rate limit counts events, not requests: a batch larger than what is left of the minute's
allowance gets a 429 and nothing is stored. Every request costs at least one unit, taken before the
body is read: a refused envelope or batch costs one, and with the bucket empty every request is a 429.

Rejection codes (`rejected[].code`):
{_CODES_DOC}
"""


def _envelope_error(code: str, message: str, param: str = "events") -> ApiError:
    return invalid_parameter(param, message, code)


def parse_body(request) -> object:
    """The JSON body, parsed here rather than by perly.parsers: its NUL/depth walk visits every
    value of a batch (~9 ms per 1,000 events). Ingestion needs neither: validate_event rejects a
    NUL or a deep value in the one event that has it, and never recurses past 5 levels."""
    if not (request.content_type or "").startswith("application/json"):
        raise UnsupportedMediaType(request.content_type)
    raw = request.body
    if not raw:
        return {}
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ParseError(str(exc).split(":")[0]) from None


def parse_envelope(data: object) -> list:
    """The batch's events list, or a 400 that refuses the whole request."""
    if not isinstance(data, dict):
        raise _envelope_error(
            "parameter_invalid", 'The request body must be a JSON object: {"events": [...]}.', param=None
        )
    unknown = sorted(set(data) - {"events"})
    if unknown:
        raise _envelope_error("parameter_unknown", f"Received unknown parameter: {unknown[0]}.", unknown[0])
    events = data.get("events")
    if events is None:
        raise _envelope_error("parameter_missing", "events is required: a list of 1 to 1,000 events.")
    if not isinstance(events, list):
        raise _envelope_error("parameter_invalid", "events must be a list of 1 to 1,000 events.")
    if not 1 <= len(events) <= MAX_BATCH:
        raise _envelope_error(
            "parameter_invalid",
            f"events must contain 1 to {MAX_BATCH:,} events; received {len(events):,}. Split the batch.",
        )
    return events


@extend_schema_view(
    list=extend_schema(
        summary="List events",
        description="Newest `timestamp` first. Filters combine with AND. A `customer` this workspace "
        "does not have gives an empty list. A deleted customer's events are not listed from the moment "
        "the DELETE answers (the purge that removes them runs later).",
        parameters=[
            OpenApiParameter("customer", OpenApiTypes.STR, description="A customer id (cus_...)."),
            OpenApiParameter(
                "type", OpenApiTypes.STR, many=True, explode=True, description="Repeatable: type=a&type=b."
            ),
            OpenApiParameter(
                "timestamp_after",
                OpenApiTypes.DATETIME,
                description="Inclusive; a date or ISO 8601 datetime.",
            ),
            OpenApiParameter(
                "timestamp_before",
                OpenApiTypes.DATETIME,
                description="Exclusive; a date or ISO 8601 datetime.",
            ),
        ],
    ),
    create=extend_schema(
        summary="Ingest a batch of events",
        description=_INGEST_DOC,
        request=EventBatchInputSerializer,
        responses={
            200: OpenApiResponse(EventBatchSerializer, description="Stored, duplicates and rejected events."),
        },
    ),
)
class EventViewSet(mixins.ListModelMixin, WorkspaceScopedViewSet):
    queryset = Event.objects.all()
    serializer_class = EventSerializer
    filterset_class = EventFilterSet
    scope_resource = "events"
    id_prefix = "evt"
    resource_name = "event"
    cursor_ordering = ("timestamp", "id")
    repeatable_params = ("type",)

    def scope_queryset(self, queryset):
        # A deleted customer's events are gone at once, not when the purge gets to them.
        return queryset.exclude(customer_id__in=deleted_customer_ids(workspace_id=self.workspace_id))

    def create(self, request, *args, **kwargs):
        events = parse_envelope(parse_body(request))
        # Counted per event, before anything is stored: a refused batch stores nothing.
        state = charge_events(request, len(events))
        if not state.allowed:
            return rate_limited_response(state)
        result = services.event_batch_ingest(workspace_id=self.workspace_id, events=events)
        return Response(result.as_dict())


_TYPES_DOC = """Every event type this workspace has sent, with how many of its events are dated today (UTC)
or on the 29 days before, and the latest event timestamp. Most frequent first, ties by type name.
The counts are kept per type and day as events are stored (and taken off when events are deleted),
so this never counts the events table. `starting_after` / `ending_before` take an event **type**
from a previous page (a type this workspace has not sent is a 400)."""


class EventTypeViewSet(WorkspaceScopedViewSet):
    queryset = EventTypeDaily.objects.all()
    serializer_class = EventTypeSerializer
    scope_resource = "events"
    resource_name = "event type"

    @extend_schema(summary="List event types", description=_TYPES_DOC, responses={200: EventTypeSerializer})
    def list(self, request, *args, **kwargs):
        params = request.query_params
        limit = parse_limit(params.get("limit"))
        after, before = params.get("starting_after"), params.get("ending_before")
        if after is not None and before is not None:
            raise ApiError(
                400,
                "parameters_exclusive",
                "Pass only one of starting_after and ending_before.",
                "starting_after",
            )
        try:
            rows, has_more = event_types_page(
                workspace_id=self.workspace_id, limit=limit, starting_after=after, ending_before=before
            )
        except UnknownEventType as exc:
            param = "starting_after" if after is not None else "ending_before"
            raise ApiError(
                400, "parameter_invalid", f"{param}: no such event type: '{exc}'.", param
            ) from None
        return Response(
            {
                "object": "list",
                "url": request.path,
                "has_more": has_more,
                "data": [event_type_representation(row) for row in rows],
            }
        )
