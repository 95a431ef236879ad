"""Scopes per method: GET needs <resource>:read, writes need <resource>:write (write implies read)."""

from __future__ import annotations

import pytest

from tests.platform.helpers import assert_error


def _forbidden(response, scope: str) -> None:
    assert_error(
        response,
        403,
        "permission_error",
        "insufficient_permissions",
        f"This API key does not have the '{scope}' scope.",
        param=None,
    )


@pytest.fixture
def reader(workspace, make_client):
    return make_client(workspace, scopes="customers:read")


@pytest.fixture
def unrelated(workspace, make_client):
    return make_client(workspace, scopes="events:write,health:read")


def test_read_scope_can_list_and_retrieve(reader, customer):
    assert reader.get("/v1/customers").status_code == 200
    assert reader.get(f"/v1/customers/{customer['id']}").status_code == 200


def test_read_scope_cannot_create(reader):
    _forbidden(reader.post("/v1/customers", {"name": "X"}), "customers:write")


def test_read_scope_cannot_update(reader, customer):
    _forbidden(reader.patch(f"/v1/customers/{customer['id']}", {"name": "X"}), "customers:write")


def test_read_scope_cannot_delete(reader, customer, client):
    _forbidden(reader.delete(f"/v1/customers/{customer['id']}"), "customers:write")
    assert client.get(f"/v1/customers/{customer['id']}").status_code == 200


def test_other_resource_scopes_cannot_read_customers(unrelated):
    _forbidden(unrelated.get("/v1/customers"), "customers:read")


def test_write_scope_implies_read(workspace, make_client, customer):
    writer = make_client(workspace, scopes="customers:write")
    assert writer.get(f"/v1/customers/{customer['id']}").status_code == 200
    assert writer.patch(f"/v1/customers/{customer['id']}", {"plan": "pro"}).status_code == 200


def test_read_shorthand_covers_customers_read_only(workspace, make_client):
    client = make_client(workspace, scopes="read")
    assert client.get("/v1/customers").status_code == 200
    _forbidden(client.post("/v1/customers", {"name": "X"}), "customers:write")


def test_scope_is_checked_before_the_body(reader):
    _forbidden(reader.post("/v1/customers", {"nonsense": 1}), "customers:write")
