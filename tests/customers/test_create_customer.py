from __future__ import annotations

import re

import pytest

from customers.models import Customer
from tests.platform.helpers import assert_error

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def test_create_returns_the_full_object(client):
    response = client.post(
        "/v1/customers",
        {
            "name": "Initech",
            "email": "Ops@Initech.com",
            "domain": "Initech.COM",
            "external_id": "acct_1",
            "plan": "growth",
            "owner": "Maya@perly.io",
            "lifecycle_stage": "trial",
            "metadata": {"region": "emea"},
        },
    )
    assert response.status_code == 201
    body = response.json()
    assert re.match(r"^cus_[0-9a-z]{26}$", body["id"])
    assert ISO.match(body["created_at"]) and body["created_at"] == body["updated_at"]
    assert body == {
        "id": body["id"],
        "object": "customer",
        "name": "Initech",
        "email": "ops@initech.com",
        "domain": "initech.com",
        "external_id": "acct_1",
        "plan": "growth",
        "owner": "maya@perly.io",
        "lifecycle_stage": "trial",
        "churned_at": None,
        "metadata": {"region": "emea"},
        "health": None,
        "created_at": body["created_at"],
        "updated_at": body["created_at"],
    }
    assert client.get(f"/v1/customers/{body['id']}").json() == body


def test_only_name_is_required(client):
    body = client.post("/v1/customers", {"name": "Solo"}).json()
    assert {
        k: body[k] for k in ("email", "domain", "external_id", "plan", "owner", "lifecycle_stage")
    } == dict.fromkeys(("email", "domain", "external_id", "plan", "owner", "lifecycle_stage"))
    assert body["metadata"] == {}


@pytest.mark.parametrize(
    ("field", "value", "code", "message"),
    [
        ("name", "", "parameter_invalid", "name: This field may not be blank."),
        ("name", None, "parameter_invalid", "name: This field may not be null."),
        ("name", "x" * 201, "parameter_invalid", "name: Ensure this field has no more than 200 characters."),
        # The documented maxLength counts what was sent, trailing whitespace included.
        (
            "name",
            "x" * 200 + " ",
            "parameter_invalid",
            "name: Ensure this field has no more than 200 characters.",
        ),
        ("email", "not-an-email", "parameter_invalid", "email: Enter a valid email address."),
        ("owner", "maya", "parameter_invalid", "owner: Enter a valid email address."),
        ("domain", "not a domain", "parameter_invalid", "domain must be a hostname such as 'example.com'."),
        (
            "external_id",
            "x" * 256,
            "parameter_invalid",
            "external_id: Ensure this field has no more than 255 characters.",
        ),
        (
            "lifecycle_stage",
            "zombie",
            "parameter_invalid",
            'lifecycle_stage: "zombie" is not a valid choice.',
        ),
        ("plan", ["a"], "parameter_invalid", "plan: Not a valid string."),
    ],
)
def test_invalid_field_is_400(client, field, value, code, message):
    body = {"name": "A", field: value}
    response = client.post("/v1/customers", body)
    assert_error(
        response,
        400,
        "invalid_request_error",
        code,
        message,
        param=field,
        errors=[{"param": field, "code": code, "message": message}],
    )
    assert Customer.objects.count() == 0


def test_name_at_the_limit_is_accepted(create):
    assert create(name="x" * 200)["name"] == "x" * 200


def test_duplicate_external_id_is_409_naming_the_existing_customer(client, create):
    first = create(external_id="acct_9")
    response = client.post("/v1/customers", {"name": "Again", "external_id": "acct_9"})
    assert_error(
        response,
        409,
        "invalid_request_error",
        "resource_already_exists",
        f"A customer with external_id 'acct_9' already exists: '{first['id']}'.",
        param="external_id",
    )
    assert Customer.objects.count() == 1


def test_same_external_id_in_another_workspace_is_fine(create, other_client):
    create(external_id="acct_9")
    assert other_client.post("/v1/customers", {"name": "B", "external_id": "acct_9"}).status_code == 201


def test_external_id_is_reusable_after_delete(client, create):
    first = create(external_id="acct_9")
    assert client.delete(f"/v1/customers/{first['id']}").status_code == 200
    again = create(external_id="acct_9")
    assert again["id"] != first["id"]


def test_many_customers_without_external_id(create):
    create(name="A")
    create(name="B")
    assert Customer.objects.filter(external_id__isnull=True).count() == 2


def test_ids_are_prefixed_and_unique(create):
    ids = {create(name=str(i))["id"] for i in range(5)}
    assert len(ids) == 5
