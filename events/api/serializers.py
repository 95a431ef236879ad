"""The event object, written by hand (lists render up to 100 per page), and schema-only
serializers for the OpenAPI document."""

from __future__ import annotations

from rest_framework import serializers

from events.models import Event
from events.validation import MAX_BATCH, MAX_EVENT_BYTES, MAX_IDEMPOTENCY_KEY_LENGTH, REJECTION_CODES
from perly.timestamps import iso


def event_representation(event: Event) -> dict:
    return {
        "id": event.id,
        "object": "event",
        "customer": event.customer_id,
        "type": event.type,
        "timestamp": iso(event.timestamp, fraction=True),  # fractions only when the event had them
        "properties": event.properties,
        "idempotency_key": event.idempotency_key,
        "received_at": iso(event.received_at, fraction=True),
    }


class EventSerializer(serializers.Serializer):
    id = serializers.CharField(help_text="evt_...")
    object = serializers.CharField(help_text='Always "event".')
    customer = serializers.CharField(help_text="The customer's id (cus_...).")
    type = serializers.CharField()
    timestamp = serializers.DateTimeField(help_text="When it happened, UTC.")
    properties = serializers.DictField()
    idempotency_key = serializers.CharField(allow_null=True)
    received_at = serializers.DateTimeField()

    def to_representation(self, instance: Event) -> dict:
        return event_representation(instance)


class EventInputSerializer(serializers.Serializer):
    customer_id = serializers.CharField(required=False, help_text="cus_... Exactly one of the two.")
    customer_external_id = serializers.CharField(
        required=False, max_length=255, help_text="The customer's external_id. Exactly one of the two."
    )
    type = serializers.RegexField(r"^[A-Za-z0-9_.:\-]{1,100}$", max_length=100)
    timestamp = serializers.DateTimeField(
        required=False, help_text="ISO 8601; default: the time received. At most 24 h in the future."
    )
    properties = serializers.DictField(
        required=False, help_text="A JSON object nested at most 5 levels (itself being level 1)."
    )
    idempotency_key = serializers.CharField(
        required=False,
        max_length=MAX_IDEMPOTENCY_KEY_LENGTH,
        help_text="Stored once per workspace, forever: a repeat is counted as a duplicate.",
    )


class EventBatchInputSerializer(serializers.Serializer):
    events = EventInputSerializer(
        many=True,
        min_length=1,
        max_length=MAX_BATCH,
        help_text=f"1 to {MAX_BATCH} events; each at most {MAX_EVENT_BYTES} bytes serialized.",
    )


class EventRejectionSerializer(serializers.Serializer):
    index = serializers.IntegerField(help_text="Position of the event in the request's events list.")
    code = serializers.ChoiceField(choices=sorted(REJECTION_CODES))
    param = serializers.CharField(allow_null=True)
    message = serializers.CharField()


class EventBatchSerializer(serializers.Serializer):
    object = serializers.CharField(help_text='Always "event_batch".')
    accepted = serializers.IntegerField(help_text="Events stored by this request.")
    duplicates = serializers.IntegerField(
        help_text="Valid events not stored again: their idempotency_key was already stored or repeated."
    )
    rejected = EventRejectionSerializer(many=True)


class EventTypeSerializer(serializers.Serializer):
    object = serializers.CharField(help_text='Always "event_type".')
    type = serializers.CharField(help_text="The event type, as sent.")
    count_30d = serializers.IntegerField(
        help_text="Events of this type dated today (UTC) or the 29 days before."
    )
    last_seen_at = serializers.DateTimeField(help_text="The latest timestamp of an event of this type.")


def event_type_representation(row) -> dict:
    return {
        "object": "event_type",
        "type": row.type,
        "count_30d": row.count_30d,
        "last_seen_at": iso(row.last_seen_at),
    }
