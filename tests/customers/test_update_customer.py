from __future__ import annotations

from customers.models import Customer
from tests.platform.helpers import assert_error


def test_patch_changes_only_the_fields_sent(client, create):
    customer = create(name="Initech", plan="starter", email="a@initech.com")
    response = client.patch(
        f"/v1/customers/{customer['id']}", {"plan": "growth", "lifecycle_stage": "active"}
    )
    assert response.status_code == 200
    body = response.json()
    assert body == {
        **customer,
        "plan": "growth",
        "lifecycle_stage": "active",
        "updated_at": body["updated_at"],
    }
    assert body["updated_at"] >= customer["updated_at"]
    assert client.get(f"/v1/customers/{customer['id']}").json() == body


def test_patch_null_clears_an_optional_field(client, create):
    customer = create(email="a@initech.com")
    body = client.patch(f"/v1/customers/{customer['id']}", {"email": None}).json()
    assert body["email"] is None


def test_patch_empty_body_changes_nothing(client, create):
    customer = create()
    response = client.patch(f"/v1/customers/{customer['id']}", {})
    assert response.status_code == 200
    assert {k: v for k, v in response.json().items() if k != "updated_at"} == {
        k: v for k, v in customer.items() if k != "updated_at"
    }


def test_patch_validates_like_create(client, create):
    customer = create()
    assert_error(
        client.patch(f"/v1/customers/{customer['id']}", {"email": "nope", "name": ""}),
        400,
        "invalid_request_error",
        "parameter_invalid",
        "name: This field may not be blank.",
        param="name",
        errors=[
            {"param": "name", "code": "parameter_invalid", "message": "name: This field may not be blank."},
            {"param": "email", "code": "parameter_invalid", "message": "email: Enter a valid email address."},
        ],
    )


def test_patch_rejects_unknown_and_read_only_fields(client, create):
    customer = create()
    assert_error(
        client.patch(f"/v1/customers/{customer['id']}", {"health": {"score": 100}}),
        400,
        "invalid_request_error",
        "parameter_read_only",
        "health is read-only and cannot be set.",
        param="health",
    )
    assert_error(
        client.patch(f"/v1/customers/{customer['id']}", {"nickname": "x"}),
        400,
        "invalid_request_error",
        "parameter_unknown",
        "Received unknown parameter: nickname.",
        param="nickname",
    )


def test_patch_to_a_taken_external_id_is_409(client, create):
    first = create(external_id="acct_1")
    second = create(external_id="acct_2")
    assert_error(
        client.patch(f"/v1/customers/{second['id']}", {"external_id": "acct_1"}),
        409,
        "invalid_request_error",
        "resource_already_exists",
        f"A customer with external_id 'acct_1' already exists: '{first['id']}'.",
        param="external_id",
    )
    assert Customer.objects.get(pk=second["id"]).external_id == "acct_2"


def test_patch_to_its_own_external_id_is_fine(client, create):
    customer = create(external_id="acct_1")
    assert client.patch(f"/v1/customers/{customer['id']}", {"external_id": "acct_1"}).status_code == 200


def test_patch_unknown_customer_is_404(client):
    assert_error(
        client.patch("/v1/customers/cus_000000000000000000000000aa", {"name": "x"}),
        404,
        "invalid_request_error",
        "resource_missing",
        "No such customer: 'cus_000000000000000000000000aa'.",
    )
