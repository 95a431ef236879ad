from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import pytest

from customers.services import customer_delete
from events.models import Event
from tests.events.conftest import post_events


def test_batch_of_1000_is_accepted(client, acme):
    events = [{"customer_id": acme.id, "type": "login", "idempotency_key": f"k{i}"} for i in range(1000)]
    response = post_events(client, events)
    assert response.status_code == 200, response.content
    assert response.json() == {"object": "event_batch", "accepted": 1000, "duplicates": 0, "rejected": []}
    assert Event.objects.filter(customer_id=acme.id).count() == 1000


def test_batch_of_1001_is_refused_whole(client, acme):
    response = post_events(client, [{"customer_id": acme.id, "type": "login"}] * 1001)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "parameter_invalid"
    assert error["param"] == "events"
    assert error["message"] == "events must contain 1 to 1,000 events; received 1,001. Split the batch."
    assert not Event.objects.exists()


@pytest.mark.parametrize(
    ("body", "code", "param"),
    [
        ({}, "parameter_missing", "events"),
        ({"events": {"type": "login"}}, "parameter_invalid", "events"),
        ({"events": []}, "parameter_invalid", "events"),
        ({"events": None}, "parameter_missing", "events"),
        ({"events": [], "batch": 1}, "parameter_unknown", "batch"),
        ([{"type": "login"}], "parameter_invalid", None),
    ],
)
def test_bad_envelope_is_400_and_stores_nothing(client, acme, body, code, param):
    response = client.post("/v1/events", body, format="json")
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["type"], error["code"], error["param"]) == ("invalid_request_error", code, param)
    assert not Event.objects.exists()


def test_body_that_is_not_json_is_400(client, acme):
    response = client.post("/v1/events", b'{"events": [', content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_json"
    assert not Event.objects.exists()


def test_body_over_4_mib_is_413(client, acme):
    big = {"customer_id": acme.id, "type": "x", "properties": {"p": "a" * 30_000}}
    body = orjson.dumps({"events": [big] * 150})  # ~4.5 MB
    response = client.post("/v1/events", body, content_type="application/json")
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "request_too_large"
    assert not Event.objects.exists()


def test_valid_events_are_stored_with_every_field(client, acme):
    response = post_events(
        client,
        [
            {
                "customer_id": acme.id,
                "type": "report.exported",
                "timestamp": "2026-03-01T10:00:00Z",
                "properties": {"format": "csv", "rows": 12, "tags": ["a", {"b": None}]},
                "idempotency_key": "exp-1",
            },
            {"customer_external_id": "acct_1", "type": "login"},
        ],
    )
    assert response.json()["accepted"] == 2
    exported, login = Event.objects.order_by("timestamp")
    assert exported.id.startswith("evt_") and len(exported.id) == 30
    assert exported.customer_id == login.customer_id == acme.id
    assert exported.properties == {"format": "csv", "rows": 12, "tags": ["a", {"b": None}]}
    assert exported.timestamp == datetime(2026, 3, 1, 10, tzinfo=UTC)
    assert login.properties == {} and login.idempotency_key is None
    # No timestamp: the time received.
    assert login.timestamp == login.received_at


def test_offsets_are_normalized_to_utc(client, acme):
    post_events(
        client,
        [
            {"customer_id": acme.id, "type": "a", "timestamp": "2026-03-01T12:30:00+02:00"},
            {"customer_id": acme.id, "type": "b", "timestamp": "2026-03-01T01:00:00.250-05:30"},
            {"customer_id": acme.id, "type": "c", "timestamp": "2026-03-01T09:00:00"},
        ],
    )
    listed = {e["type"]: e["timestamp"] for e in client.get("/v1/events").json()["data"]}
    assert listed == {
        "a": "2026-03-01T10:30:00Z",
        "b": "2026-03-01T06:30:00.250000Z",
        "c": "2026-03-01T09:00:00Z",
    }


def _rejection(client, event, **customers):
    response = post_events(client, [event])
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["accepted"] == 0 and body["duplicates"] == 0
    (rejection,) = body["rejected"]
    return rejection


@pytest.mark.parametrize(
    ("event", "code", "param"),
    [
        ({"type": "login"}, "parameter_missing", "customer_id"),
        ({"customer_id": "{cus}"}, "parameter_missing", "type"),
        (
            {"customer_id": "{cus}", "customer_external_id": "acct_1", "type": "x"},
            "parameters_exclusive",
            "customer_id",
        ),
        ({"customer_id": "cus_nope", "type": "x"}, "parameter_invalid", "customer_id"),
        ({"customer_id": 42, "type": "x"}, "parameter_invalid", "customer_id"),
        ({"customer_external_id": "", "type": "x"}, "parameter_invalid", "customer_external_id"),
        ({"customer_id": "{cus}", "type": "has space"}, "parameter_invalid", "type"),
        ({"customer_id": "{cus}", "type": "t" * 101}, "parameter_invalid", "type"),
        ({"customer_id": "{cus}", "type": 5}, "parameter_invalid", "type"),
        ({"customer_id": "{cus}", "type": "x", "timestamp": "yesterday"}, "parameter_invalid", "timestamp"),
        ({"customer_id": "{cus}", "type": "x", "timestamp": 1700000000}, "parameter_invalid", "timestamp"),
        ({"customer_id": "{cus}", "type": "x", "properties": [1]}, "parameter_invalid", "properties"),
        (
            {"customer_id": "{cus}", "type": "x", "properties": {"a": "\u0000"}},
            "parameter_invalid",
            "properties",
        ),
        (
            {"customer_id": "{cus}", "type": "x", "idempotency_key": "k" * 256},
            "parameter_invalid",
            "idempotency_key",
        ),
        ({"customer_id": "{cus}", "type": "x", "idempotency_key": 7}, "parameter_invalid", "idempotency_key"),
        ({"customer_id": "{cus}", "type": "x", "colour": "red"}, "parameter_unknown", "colour"),
        ("login", "parameter_invalid", None),
        ({"customer_id": "cus_" + "0" * 26, "type": "x"}, "customer_not_found", "customer_id"),
        ({"customer_external_id": "acct_404", "type": "x"}, "customer_not_found", "customer_external_id"),
    ],
)
def test_each_rejection_code(client, acme, event, code, param):
    if isinstance(event, dict) and event.get("customer_id") == "{cus}":
        event = {**event, "customer_id": acme.id}
    rejection = _rejection(client, event)
    assert (rejection["index"], rejection["code"], rejection["param"]) == (0, code, param)
    assert rejection["message"]
    assert not Event.objects.exists()


def test_timestamp_more_than_24h_ahead_is_rejected_but_a_backfill_is_not(client, acme):
    ahead = datetime.now(UTC) + timedelta(hours=25)
    soon = datetime.now(UTC) + timedelta(hours=23)
    response = post_events(
        client,
        [
            {"customer_id": acme.id, "type": "x", "timestamp": ahead.isoformat()},
            {"customer_id": acme.id, "type": "x", "timestamp": soon.isoformat()},
            {"customer_id": acme.id, "type": "x", "timestamp": "1999-01-01T00:00:00Z"},
        ],
    )
    assert response.json() == {
        "object": "event_batch",
        "accepted": 2,
        "duplicates": 0,
        "rejected": [
            {
                "index": 0,
                "code": "timestamp_too_far_in_future",
                "param": "timestamp",
                "message": "timestamp is more than 24 hours in the future.",
            }
        ],
    }


def test_properties_deeper_than_5_levels_are_rejected(client, acme):
    five = {"l2": {"l3": {"l4": {"l5": [1]}}}}
    six = {"l2": {"l3": {"l4": {"l5": {"l6": {}}}}}}
    response = post_events(
        client,
        [
            {"customer_id": acme.id, "type": "x", "properties": five},
            {"customer_id": acme.id, "type": "x", "properties": six},
        ],
    )
    body = response.json()
    assert body["accepted"] == 1
    assert body["rejected"] == [
        {
            "index": 1,
            "code": "properties_too_deep",
            "param": "properties",
            "message": "properties may nest at most 5 levels (properties itself is level 1).",
        }
    ]


def test_event_over_32_kb_is_rejected(client, acme):
    fits = {"customer_id": acme.id, "type": "x", "properties": {"blob": "a" * 32_000}}
    too_big = {"customer_id": acme.id, "type": "x", "properties": {"blob": "a" * 32_800}}
    body = post_events(client, [fits, too_big]).json()
    assert body["accepted"] == 1
    assert [(r["index"], r["code"], r["param"]) for r in body["rejected"]] == [(1, "event_too_large", None)]


def test_bad_events_are_rejected_alone_and_the_rest_stored(client, acme):
    events = [{"customer_id": acme.id, "type": "ok"}] * 5
    events[1] = {"customer_id": acme.id}
    events[3] = {"customer_external_id": "nobody", "type": "x"}
    body = post_events(client, events).json()
    assert body["accepted"] == 3
    assert [r["index"] for r in body["rejected"]] == [1, 3]
    assert Event.objects.count() == 3


def test_another_workspaces_customer_is_not_found(client, other_workspace, make_customer):
    theirs = make_customer(other_workspace, "Globex", external_id="acct_1")
    body = post_events(
        client,
        [{"customer_id": theirs.id, "type": "x"}, {"customer_external_id": "acct_1", "type": "x"}],
    ).json()
    assert body["accepted"] == 0
    assert body["rejected"] == [
        {
            "index": 0,
            "code": "customer_not_found",
            "param": "customer_id",
            "message": f"No such customer: '{theirs.id}'.",
        },
        {
            "index": 1,
            "code": "customer_not_found",
            "param": "customer_external_id",
            "message": "No such customer: no customer with external_id 'acct_1'.",
        },
    ]
    assert not Event.objects.exists()


def test_deleted_customer_is_not_found(client, workspace, make_customer, settings):
    settings.CELERY_TASK_ALWAYS_EAGER = False  # keep it soft-deleted, not purged yet
    gone = make_customer(workspace, "Gone", external_id="acct_gone")
    customer_delete(workspace_id=workspace.id, customer_id=gone.id)
    body = post_events(client, [{"customer_id": gone.id, "type": "x"}]).json()
    assert [r["code"] for r in body["rejected"]] == ["customer_not_found"]


def test_hook_is_called_once_per_batch_with_the_touched_customers(
    client, workspace, acme, make_customer, hook_calls
):
    other = make_customer(workspace, "Other")
    idle = make_customer(workspace, "Idle")
    events = [{"customer_id": acme.id, "type": "x"}] * 3 + [
        {"customer_external_id": "acct_1", "type": "x"},
        {"customer_id": other.id, "type": "x", "idempotency_key": "k"},
        {"customer_id": idle.id},  # rejected: not touched
    ]
    post_events(client, events)
    assert hook_calls == [(workspace.id, {acme.id, other.id})]
    # A batch of only duplicates stores nothing and touches nobody.
    post_events(client, [{"customer_id": other.id, "type": "x", "idempotency_key": "k"}])
    assert len(hook_calls) == 1


def test_ingest_needs_events_write_scope(workspace, make_client, acme):
    reader = make_client(workspace, scopes="events:read")
    response = post_events(reader, [{"customer_id": acme.id, "type": "x"}])
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "insufficient_permissions"
    writer = make_client(workspace, scopes="events:write")
    assert post_events(writer, [{"customer_id": acme.id, "type": "x"}]).json()["accepted"] == 1


def test_nul_characters_reject_only_their_event(client, acme):
    events = [
        {"customer_id": acme.id, "type": "x", "idempotency_key": "a\u0000b"},
        {"customer_external_id": "acct\u00001", "type": "x"},
        {"customer_id": acme.id, "type": "x", "properties": {"k\u0000": 1}},
        {"customer_id": acme.id, "type": "ok"},
    ]
    body = post_events(client, events).json()
    assert body["accepted"] == 1
    assert [(r["index"], r["code"], r["param"]) for r in body["rejected"]] == [
        (0, "parameter_invalid", "idempotency_key"),
        (1, "customer_not_found", "customer_external_id"),
        (2, "parameter_invalid", "properties"),
    ]


def test_deeply_nested_body_is_rejected_per_event_without_a_500(client, acme):
    deep: dict = {}
    for _ in range(500):
        deep = {"d": deep}
    events = [
        {"customer_id": acme.id, "type": "x", "properties": deep},
        {"customer_id": acme.id, "type": "ok"},
    ]
    body = post_events(client, events).json()
    assert body["accepted"] == 1
    assert body["rejected"][0]["code"] == "properties_too_deep"


def test_non_json_content_type_is_415(client, acme):
    response = client.post("/v1/events", "events=1", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 415
    assert response.json()["error"]["code"] == "unsupported_media_type"
