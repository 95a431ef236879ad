"""GET /v1/events/types: per-type counts kept by ingestion, most frequent first."""

from __future__ import annotations

from datetime import timedelta

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from customers.services import customer_delete, customer_purge
from events.models import EventTypeDaily
from events.services import events_prune
from tests.events.conftest import post_events
from tests.platform.helpers import assert_error


def _at(days_ago: float, hour: int = 12) -> str:
    moment = (timezone.now() - timedelta(days=days_ago)).replace(hour=hour, minute=0, second=0, microsecond=0)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _send(client, customer_id: str, *events: tuple[str, str]) -> None:
    response = post_events(
        client, [{"customer_id": customer_id, "type": t, "timestamp": ts} for t, ts in events]
    )
    assert response.status_code == 200, response.content
    assert response.json()["rejected"] == []


def _types(client, query: str = "") -> dict:
    response = client.get(f"/v1/events/types{query}")
    assert response.status_code == 200, response.content
    return response.json()


def test_counts_last_30_days_most_frequent_first(client, acme):
    _send(
        client,
        acme.id,
        ("export", _at(1)),
        ("export", _at(2)),
        ("export", _at(29)),
        ("login", _at(0)),
        ("login", _at(3)),
        ("login", _at(30)),  # the 31st day back: outside the window
        ("login", _at(45)),
        ("signup", _at(200)),
    )
    body = _types(client)
    assert all(type(t["count_30d"]) is int for t in body["data"])  # not 3.0
    assert body == {
        "object": "list",
        "url": "/v1/events/types",
        "has_more": False,
        "data": [
            {"object": "event_type", "type": "export", "count_30d": 3, "last_seen_at": _at(1)},
            {"object": "event_type", "type": "login", "count_30d": 2, "last_seen_at": _at(0)},
            {"object": "event_type", "type": "signup", "count_30d": 0, "last_seen_at": _at(200)},
        ],
    }


def test_counts_add_up_across_batches_and_skip_duplicates(client, acme):
    events = [{"customer_id": acme.id, "type": "login", "timestamp": _at(1), "idempotency_key": "k1"}]
    post_events(client, events)
    post_events(client, events)  # a duplicate: not stored, not counted
    _send(client, acme.id, ("login", _at(1, hour=15)))
    [login] = _types(client)["data"]
    assert (login["count_30d"], login["last_seen_at"]) == (2, _at(1, hour=15))


def test_ties_are_ordered_by_type_and_pages_follow(client, acme):
    _send(client, acme.id, *[(name, _at(1)) for name in ("b", "a", "d", "c")], ("e", _at(1)), ("e", _at(2)))
    assert [t["type"] for t in _types(client)["data"]] == ["e", "a", "b", "c", "d"]
    first = _types(client, "?limit=2")
    assert [t["type"] for t in first["data"]] == ["e", "a"] and first["has_more"] is True
    second = _types(client, "?limit=2&starting_after=a")
    assert [t["type"] for t in second["data"]] == ["b", "c"] and second["has_more"] is True
    last = _types(client, "?limit=2&starting_after=c")
    assert [t["type"] for t in last["data"]] == ["d"] and last["has_more"] is False
    back = _types(client, "?limit=2&ending_before=c")
    assert [t["type"] for t in back["data"]] == ["a", "b"] and back["has_more"] is True


def test_another_workspaces_types_are_invisible(client, other_client, acme, other_workspace, make_customer):
    _send(client, acme.id, ("secret_feature", _at(1)))
    theirs = make_customer(other_workspace, "Globex")
    _send(other_client, theirs.id, ("login", _at(1)))
    assert [t["type"] for t in _types(other_client)["data"]] == ["login"]
    # A's type as a cursor answers exactly like a type nobody has.
    got = other_client.get("/v1/events/types?starting_after=secret_feature")
    assert_error(
        got,
        400,
        "invalid_request_error",
        "parameter_invalid",
        "starting_after: no such event type: 'secret_feature'.",
    )
    missing = other_client.get("/v1/events/types?starting_after=nobody_has_this")
    assert missing.json()["error"]["message"] == "starting_after: no such event type: 'nobody_has_this'."


def test_bad_parameters_are_400(client, acme):
    assert_error(
        client.get("/v1/events/types?limit=0"),
        400,
        "invalid_request_error",
        "parameter_invalid",
        param="limit",
    )
    response = client.get("/v1/events/types?starting_after=a&ending_before=b")
    assert_error(response, 400, "invalid_request_error", "parameters_exclusive", param="starting_after")
    response = client.get("/v1/events/types?type=login")
    assert_error(response, 400, "invalid_request_error", "parameter_unknown", param="type")


def test_event_types_need_the_events_read_scope(make_client, workspace):
    response = make_client(workspace, scopes="customers:read").get("/v1/events/types")
    assert_error(response, 403, "permission_error", "insufficient_permissions")
    assert make_client(workspace, scopes="events:read").get("/v1/events/types").status_code == 200


def test_the_request_reads_the_daily_counters_not_the_events(client, acme):
    _send(client, acme.id, ("login", _at(1)))
    with CaptureQueriesContext(connection) as queries:
        _types(client)
    sql = " ".join(q["sql"] for q in queries.captured_queries)
    assert "events_eventtypedaily" in sql and '"events_event"' not in sql and "events_event " not in sql


def test_deleted_and_pruned_events_leave_the_counts(client, acme, workspace, make_customer):
    other = make_customer(workspace, "Other")
    _send(client, acme.id, ("login", _at(1)), ("login", _at(2)), ("export", _at(3)))
    _send(client, other.id, ("login", _at(1)), ("old", _at(100)))
    customer_delete(workspace_id=workspace.id, customer_id=acme.id)
    customer_purge(customer_id=acme.id)
    assert {t["type"]: t["count_30d"] for t in _types(client)["data"]} == {"login": 1, "old": 0}
    events_prune(before=timezone.now() - timedelta(days=50))
    assert [t["type"] for t in _types(client)["data"]] == ["login"]
    assert not EventTypeDaily.objects.filter(day__lt=(timezone.now() - timedelta(days=50)).date()).exists()
