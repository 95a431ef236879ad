"""Cursor pagination over 25+ customers: forward, backward, edges, and bad parameters."""

from __future__ import annotations

import pytest

from customers import services
from tests.platform.helpers import assert_error


@pytest.fixture
def ids(workspace):
    """27 customers; the expected order is newest first, i.e. by id descending."""
    created = [
        services.customer_create(workspace_id=workspace.id, data={"name": f"C{i}"}).id for i in range(27)
    ]
    return sorted(created, reverse=True)


def _page(client, query: str = "") -> dict:
    response = client.get(f"/v1/customers{query}")
    assert response.status_code == 200, response.content
    return response.json()


def _ids(page: dict) -> list[str]:
    return [item["id"] for item in page["data"]]


def test_default_page_is_ten_newest(client, ids):
    page = _page(client)
    assert set(page) == {"object", "url", "has_more", "data"}
    assert page["object"] == "list" and page["url"] == "/v1/customers" and page["has_more"] is True
    assert _ids(page) == ids[:10]
    assert page["data"][0]["object"] == "customer"


def test_walk_forward_through_every_page(client, ids):
    seen, cursor, pages = [], None, []
    while True:
        query = "?limit=10" + (f"&starting_after={cursor}" if cursor else "")
        page = _page(client, query)
        pages.append((len(page["data"]), page["has_more"]))
        seen += _ids(page)
        if not page["has_more"]:
            break
        cursor = seen[-1]
    assert pages == [(10, True), (10, True), (7, False)]
    assert seen == ids


def test_walk_backward_from_the_last_page(client, ids):
    last = _page(client, f"?limit=10&starting_after={ids[19]}")
    assert _ids(last) == ids[20:]
    previous = _page(client, f"?limit=10&ending_before={ids[20]}")
    assert _ids(previous) == ids[10:20] and previous["has_more"] is True
    first = _page(client, f"?limit=10&ending_before={ids[10]}")
    assert _ids(first) == ids[:10] and first["has_more"] is False


def test_ending_before_the_newest_is_empty(client, ids):
    page = _page(client, f"?ending_before={ids[0]}")
    assert page["data"] == [] and page["has_more"] is False


def test_starting_after_the_oldest_is_empty(client, ids):
    page = _page(client, f"?starting_after={ids[-1]}")
    assert page["data"] == [] and page["has_more"] is False


def test_backward_partial_page(client, ids):
    page = _page(client, f"?limit=10&ending_before={ids[3]}")
    assert _ids(page) == ids[:3] and page["has_more"] is False


@pytest.mark.parametrize(("limit", "has_more"), [(26, True), (27, False), (100, False)])
def test_has_more_at_the_edge(client, ids, limit, has_more):
    page = _page(client, f"?limit={limit}")
    assert len(page["data"]) == min(limit, 27) and page["has_more"] is has_more


def test_limit_one(client, ids):
    page = _page(client, "?limit=1")
    assert _ids(page) == ids[:1] and page["has_more"] is True


def test_cursor_of_a_deleted_customer_still_pages(client, ids):
    client.delete(f"/v1/customers/{ids[9]}")
    assert _ids(_page(client, f"?limit=3&starting_after={ids[9]}")) == ids[10:13]


def test_empty_list(client):
    assert _page(client) == {"object": "list", "url": "/v1/customers", "has_more": False, "data": []}


@pytest.mark.parametrize("limit", ["0", "101", "-1", "abc", "1.5", " 5"])
def test_bad_limit_is_400(client, limit):
    assert_error(
        client.get(f"/v1/customers?limit={limit}"),
        400,
        "invalid_request_error",
        "parameter_invalid",
        "limit must be an integer from 1 to 100.",
        param="limit",
    )


@pytest.mark.parametrize("param", ["starting_after", "ending_before"])
@pytest.mark.parametrize("value", ["nope", "evt_000000000000000000000000aa", "cus_short"])
def test_bad_cursor_is_400(client, param, value):
    assert_error(
        client.get(f"/v1/customers?{param}={value}"),
        400,
        "invalid_request_error",
        "parameter_invalid",
        f"{param} must be a cus_ id from a previous page.",
        param=param,
    )


@pytest.mark.parametrize("param", ["limit", "starting_after", "ending_before", "plan", "created_after"])
def test_empty_parameter_is_400(client, param):
    assert_error(
        client.get(f"/v1/customers?{param}="),
        400,
        "invalid_request_error",
        "parameter_invalid",
        f"{param} must not be empty; leave the parameter out instead.",
        param=param,
    )


def test_both_cursors_is_400(client, ids):
    assert_error(
        client.get(f"/v1/customers?starting_after={ids[1]}&ending_before={ids[0]}"),
        400,
        "invalid_request_error",
        "parameters_exclusive",
        "Pass only one of starting_after and ending_before.",
        param="starting_after",
    )


def test_unknown_query_parameter_is_400(client):
    assert_error(
        client.get("/v1/customers?colour=red"),
        400,
        "invalid_request_error",
        "parameter_unknown",
        "Received unknown query parameter: colour.",
        param="colour",
    )


def test_unknown_query_parameter_on_retrieve_is_400(client, customer):
    assert_error(
        client.get(f"/v1/customers/{customer['id']}?limit=5"),
        400,
        "invalid_request_error",
        "parameter_unknown",
        "Received unknown query parameter: limit.",
        param="limit",
    )


def test_repeated_parameter_is_400(client):
    assert_error(
        client.get("/v1/customers?limit=1&limit=2"),
        400,
        "invalid_request_error",
        "parameter_invalid",
        "limit may be given only once.",
        param="limit",
    )


def test_deleted_customers_are_not_listed(client, ids):
    client.delete(f"/v1/customers/{ids[0]}")
    assert ids[0] not in _ids(_page(client, "?limit=100"))


def test_list_shows_only_this_workspace(client, other_client, ids):
    other_client.post("/v1/customers", {"name": "Theirs"})
    page = _page(client, "?limit=100")
    assert _ids(page) == ids
    assert _ids(_page(other_client, "?limit=100")) != []
    assert set(_ids(_page(other_client, "?limit=100"))).isdisjoint(ids)


def test_other_workspace_cursor_reveals_nothing(client, other_client, ids):
    theirs = other_client.post("/v1/customers", {"name": "Theirs"}).json()["id"]
    page = _page(client, f"?starting_after={theirs}&limit=100")
    assert _ids(page) == ids  # every own customer is older than their newest one


def test_list_items_equal_the_retrieved_objects(client, create):
    from datetime import UTC, datetime

    from customers.models import Customer

    scored = create(name="Scored", metadata={"a": "1"}, email="x@y.io")
    Customer.objects.filter(pk=scored["id"]).update(
        health_score=71.5, health_status="neutral", health_computed_at=datetime(2026, 1, 2, 3, 4, 5, 678, UTC)
    )
    create(name="Plain")
    for item in _page(client, "?limit=100")["data"]:
        assert item == client.get(f"/v1/customers/{item['id']}").json()
    health = client.get(f"/v1/customers/{scored['id']}").json()["health"]
    assert health == {"score": 71.5, "status": "neutral", "computed_at": "2026-01-02T03:04:05Z"}
