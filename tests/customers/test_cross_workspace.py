"""Another workspace's customer answers exactly like a missing one, and nothing changes."""

from __future__ import annotations

import pytest

from customers.models import Customer
from tests.platform.helpers import assert_error


@pytest.fixture
def theirs(other_client):
    response = other_client.post(
        "/v1/customers", {"name": "Globex", "external_id": "g1", "metadata": {"a": "1"}}
    )
    return response.json()


def _snapshot(customer_id: str) -> dict:
    return Customer.all_objects.filter(pk=customer_id).values().get()


def _assert_missing(response, customer_id: str) -> None:
    assert_error(
        response,
        404,
        "invalid_request_error",
        "resource_missing",
        f"No such customer: '{customer_id}'.",
        param=None,
    )


def test_retrieve(client, theirs):
    _assert_missing(client.get(f"/v1/customers/{theirs['id']}"), theirs["id"])


def test_update(client, theirs):
    before = _snapshot(theirs["id"])
    _assert_missing(client.patch(f"/v1/customers/{theirs['id']}", {"name": "Mine now"}), theirs["id"])
    assert _snapshot(theirs["id"]) == before


def test_delete(client, other_client, theirs):
    before = _snapshot(theirs["id"])
    _assert_missing(client.delete(f"/v1/customers/{theirs['id']}"), theirs["id"])
    assert _snapshot(theirs["id"]) == before
    assert other_client.get(f"/v1/customers/{theirs['id']}").status_code == 200


def test_list(client, theirs):
    assert client.get("/v1/customers?limit=100").json()["data"] == []
    assert client.get("/v1/customers?external_id=g1").json()["data"] == []
    assert client.get("/v1/customers?q=globex").json()["data"] == []


def test_create_with_their_external_id(client, theirs):
    response = client.post("/v1/customers", {"name": "Mine", "external_id": "g1"})
    assert response.status_code == 201
    assert theirs["id"] not in response.content.decode()


def test_their_id_answers_like_a_missing_id(client, theirs):
    missing = "cus_" + theirs["id"][4:-2] + "zz"
    a = client.get(f"/v1/customers/{theirs['id']}").json()["error"]
    b = client.get(f"/v1/customers/{missing}").json()["error"]
    assert {k: v for k, v in a.items() if k not in ("message", "request_id")} == {
        k: v for k, v in b.items() if k not in ("message", "request_id")
    }
