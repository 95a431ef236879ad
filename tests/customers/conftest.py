from __future__ import annotations

import pytest


@pytest.fixture
def create(client):
    """create(**fields) -> the created customer's API dict (asserts 201)."""

    def make(**fields):
        fields.setdefault("name", "Customer")
        response = client.post("/v1/customers", fields)
        assert response.status_code == 201, response.content
        return response.json()

    return make
