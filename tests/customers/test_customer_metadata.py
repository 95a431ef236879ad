"""metadata: flat strings, 50 keys of <=40 chars, values <=500 chars; PATCH merges, null/"" removes."""

from __future__ import annotations

import pytest

from tests.platform.helpers import assert_error


def _invalid(response, param: str, message: str) -> None:
    assert_error(
        response,
        400,
        "invalid_request_error",
        "parameter_invalid",
        message,
        param=param,
        errors=[{"param": param, "code": "parameter_invalid", "message": message}],
    )


def test_fifty_keys_are_accepted(create):
    metadata = {f"k{i}": "v" for i in range(50)}
    assert create(metadata=metadata)["metadata"] == metadata


def test_fifty_one_keys_are_rejected(client):
    response = client.post("/v1/customers", {"name": "A", "metadata": {f"k{i}": "v" for i in range(51)}})
    _invalid(response, "metadata", "metadata can have at most 50 keys.")


def test_key_of_forty_characters_is_accepted_and_forty_one_rejected(client, create):
    assert create(metadata={"k" * 40: "v"})["metadata"] == {"k" * 40: "v"}
    response = client.post("/v1/customers", {"name": "A", "metadata": {"k" * 41: "v"}})
    _invalid(
        response, f"metadata[{'k' * 41}]", f"metadata[{'k' * 41}]: Metadata keys must be 1 to 40 characters."
    )


def test_empty_key_is_rejected(client):
    response = client.post("/v1/customers", {"name": "A", "metadata": {"": "v"}})
    _invalid(response, "metadata[]", "metadata[]: Metadata keys must be 1 to 40 characters.")


def test_value_of_500_characters_is_accepted_and_501_rejected(client, create):
    assert create(metadata={"k": "v" * 500})["metadata"] == {"k": "v" * 500}
    response = client.post("/v1/customers", {"name": "A", "metadata": {"k": "v" * 501}})
    _invalid(response, "metadata[k]", "metadata[k]: Metadata values must be at most 500 characters.")


@pytest.mark.parametrize("value", [1, True, {"nested": "x"}, ["a"]])
def test_non_string_values_are_rejected(client, value):
    response = client.post("/v1/customers", {"name": "A", "metadata": {"k": value}})
    _invalid(
        response, "metadata[k]", "metadata[k]: Metadata values must be strings (or null to remove the key)."
    )


@pytest.mark.parametrize("value", ["text", ["a"], 3])
def test_metadata_must_be_an_object(client, value):
    response = client.post("/v1/customers", {"name": "A", "metadata": value})
    _invalid(response, "metadata", "metadata must be a JSON object of string values.")


def test_null_or_empty_values_on_create_store_nothing(create):
    assert create(metadata={"a": None, "b": "", "c": "x"})["metadata"] == {"c": "x"}


def test_patch_merges_keys(client, create):
    customer = create(metadata={"a": "1", "b": "2"})
    response = client.patch(f"/v1/customers/{customer['id']}", {"metadata": {"b": "3", "c": "4"}})
    assert response.json()["metadata"] == {"a": "1", "b": "3", "c": "4"}


def test_patch_null_or_empty_removes_keys(client, create):
    customer = create(metadata={"a": "1", "b": "2", "c": "3"})
    response = client.patch(f"/v1/customers/{customer['id']}", {"metadata": {"a": None, "b": ""}})
    assert response.json()["metadata"] == {"c": "3"}
    assert client.get(f"/v1/customers/{customer['id']}").json()["metadata"] == {"c": "3"}


def test_patch_removing_an_absent_key_is_harmless(client, create):
    customer = create(metadata={"a": "1"})
    response = client.patch(f"/v1/customers/{customer['id']}", {"metadata": {"zzz": None}})
    assert response.json()["metadata"] == {"a": "1"}


def test_patch_cannot_grow_past_fifty_keys(client, create):
    customer = create(metadata={f"k{i}": "v" for i in range(50)})
    response = client.patch(f"/v1/customers/{customer['id']}", {"metadata": {"one_more": "v"}})
    _invalid(response, "metadata", "metadata can have at most 50 keys.")
    assert len(client.get(f"/v1/customers/{customer['id']}").json()["metadata"]) == 50


def test_patch_may_replace_keys_at_the_cap(client, create):
    customer = create(metadata={f"k{i}": "v" for i in range(50)})
    response = client.patch(f"/v1/customers/{customer['id']}", {"metadata": {"k0": None, "new": "v"}})
    assert response.status_code == 200
    assert "new" in response.json()["metadata"] and "k0" not in response.json()["metadata"]
