from __future__ import annotations

import pytest

from events.models import Event
from tests.events.conftest import post_events


@pytest.fixture
def stored(client, acme, workspace, make_customer):
    """Five events over three days for two customers."""
    beta = make_customer(workspace, "Beta")
    post_events(
        client,
        [
            {
                "customer_id": acme.id,
                "type": "login",
                "timestamp": "2026-03-01T09:00:00Z",
                "idempotency_key": "a1",
            },
            {
                "customer_id": acme.id,
                "type": "export",
                "timestamp": "2026-03-02T09:00:00Z",
                "properties": {"n": 1},
            },
            {"customer_id": beta.id, "type": "login", "timestamp": "2026-03-02T10:00:00Z"},
            {"customer_id": beta.id, "type": "invite", "timestamp": "2026-03-03T00:00:00Z"},
            {"customer_id": acme.id, "type": "login", "timestamp": "2026-03-03T12:00:00Z"},
        ],
    )
    return {"acme": acme, "beta": beta}


def _types(response):
    assert response.status_code == 200, response.content
    return [(e["type"], e["timestamp"]) for e in response.json()["data"]]


def test_list_is_newest_first_with_the_event_object(client, stored):
    response = client.get("/v1/events")
    body = response.json()
    assert (body["object"], body["url"], body["has_more"]) == ("list", "/v1/events", False)
    assert [e["timestamp"] for e in body["data"]] == [
        "2026-03-03T12:00:00Z",
        "2026-03-03T00:00:00Z",
        "2026-03-02T10:00:00Z",
        "2026-03-02T09:00:00Z",
        "2026-03-01T09:00:00Z",
    ]
    oldest = body["data"][-1]
    event = Event.objects.get(idempotency_key="a1")
    assert oldest == {
        "id": event.id,
        "object": "event",
        "customer": stored["acme"].id,
        "type": "login",
        "timestamp": "2026-03-01T09:00:00Z",
        "properties": {},
        "idempotency_key": "a1",
        "received_at": event.received_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
    }


def test_filter_by_customer(client, stored):
    response = client.get("/v1/events", {"customer": stored["beta"].id})
    assert _types(response) == [("invite", "2026-03-03T00:00:00Z"), ("login", "2026-03-02T10:00:00Z")]


def test_filter_by_repeated_type(client, stored):
    response = client.get("/v1/events?type=invite&type=export")
    assert _types(response) == [("invite", "2026-03-03T00:00:00Z"), ("export", "2026-03-02T09:00:00Z")]


def test_timestamp_after_is_inclusive_and_before_exclusive(client, stored):
    response = client.get(
        "/v1/events", {"timestamp_after": "2026-03-02T09:00:00Z", "timestamp_before": "2026-03-03"}
    )
    assert _types(response) == [("login", "2026-03-02T10:00:00Z"), ("export", "2026-03-02T09:00:00Z")]


def test_filters_combine(client, stored):
    response = client.get(f"/v1/events?type=login&customer={stored['acme'].id}&timestamp_after=2026-03-02")
    assert _types(response) == [("login", "2026-03-03T12:00:00Z")]


@pytest.mark.parametrize(
    ("query", "param"),
    [
        ("customer=acme", "customer"),
        ("customer=evt_0000000000000000000000000a", "customer"),
        ("type=bad%20type", "type"),
        ("timestamp_after=yesterday", "timestamp_after"),
        ("timestamp_before=2026-13-01", "timestamp_before"),
        ("colour=red", "colour"),
        ("customer=cus_00000000000000000000000000&customer=cus_00000000000000000000000001", "customer"),
        ("limit=0", "limit"),
        ("starting_after=cus_00000000000000000000000000", "starting_after"),
    ],
)
def test_bad_filter_value_is_400(client, stored, query, param):
    response = client.get(f"/v1/events?{query}")
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    assert error["code"] in ("parameter_invalid", "parameter_unknown")


def test_unknown_and_other_workspaces_customer_give_the_same_empty_list(client, other_client, stored):
    theirs = other_client.post("/v1/customers", {"name": "Globex"}).json()["id"]
    nowhere = "cus_" + "0" * 26
    mine_unknown = client.get("/v1/events", {"customer": nowhere})
    mine_theirs = client.get("/v1/events", {"customer": theirs})
    assert mine_unknown.status_code == mine_theirs.status_code == 200
    assert (
        mine_unknown.json()
        == mine_theirs.json()
        == {"object": "list", "url": "/v1/events", "has_more": False, "data": []}
    )


def test_other_workspace_sees_none_of_my_events(other_client, stored):
    assert other_client.get("/v1/events").json()["data"] == []


def test_pagination_walks_equal_timestamps_without_gaps_or_repeats(client, acme):
    same = "2026-03-01T00:00:00Z"
    post_events(client, [{"customer_id": acme.id, "type": f"t{i}", "timestamp": same} for i in range(25)])
    post_events(client, [{"customer_id": acme.id, "type": "later", "timestamp": "2026-03-02T00:00:00Z"}])
    seen, cursor = [], None
    for _ in range(10):
        params = {"limit": 7, **({"starting_after": cursor} if cursor else {})}
        body = client.get("/v1/events", params).json()
        seen.extend(e["id"] for e in body["data"])
        if not body["has_more"]:
            break
        cursor = body["data"][-1]["id"]
    expected = list(Event.objects.order_by("-timestamp", "-id").values_list("id", flat=True))
    assert seen == expected and len(seen) == 26

    # And back again from the last page.
    back = client.get("/v1/events", {"limit": 7, "ending_before": seen[14]}).json()
    assert [e["id"] for e in back["data"]] == seen[7:14]
    assert back["has_more"] is True


def test_list_needs_events_read_scope(workspace, make_client, stored):
    response = make_client(workspace, scopes="customers:read").get("/v1/events")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "insufficient_permissions"
    assert make_client(workspace, scopes="events:read").get("/v1/events").status_code == 200
