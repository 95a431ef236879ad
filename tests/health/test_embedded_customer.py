"""A health key sees a customer only by its id: name, email and external id, and filtering by
an owner's email, need customers:read too (the rule in perly.scopes)."""

from __future__ import annotations

import pytest

from tests.health.test_summary_and_at_risk import scored
from tests.platform.helpers import assert_error

PII = {"name": "Secret Holdings", "email": "ceo@secret.example", "external_id": "secret-ext-1"}


@pytest.fixture
def at_risk_customer(make_customer):
    return scored(make_customer, 12, owner="owner@secret.example", **PII)


@pytest.mark.parametrize("scopes", ["health:read", "health:write", "health:read,events:read,webhooks:read"])
def test_at_risk_without_customers_read_shows_only_the_id(workspace, make_client, at_risk_customer, scopes):
    response = make_client(workspace, scopes=scopes).get("/v1/health/at-risk")
    assert response.status_code == 200, response.content
    [row] = response.json()["data"]
    assert row["customer"] == {"id": at_risk_customer.id}
    assert row["score"] == 12
    for value in PII.values():
        assert value not in response.content.decode()


@pytest.mark.parametrize("scopes", ["health:read,customers:read", "read", "health:read,customers:write"])
def test_at_risk_with_customers_read_embeds_the_customer(workspace, make_client, at_risk_customer, scopes):
    response = make_client(workspace, scopes=scopes).get("/v1/health/at-risk")
    [row] = response.json()["data"]
    assert row["customer"] == {"id": at_risk_customer.id, **PII}


def test_the_owner_filter_needs_customers_read(workspace, make_client, at_risk_customer):
    health_only = make_client(workspace, scopes="health:read")
    for owner in ("owner@secret.example", "nobody@nowhere.example"):
        response = health_only.get("/v1/health/summary", {"owner": owner})
        assert_error(
            response,
            403,
            "permission_error",
            "insufficient_permissions",
            "owner: filtering by owner needs the 'customers:read' scope.",
            param="owner",
        )
    # The other filters and the unfiltered summary stay open to a health key.
    assert health_only.get("/v1/health/summary").json()["total_customers"] == 1
    assert health_only.get("/v1/health/summary", {"lifecycle_stage": "active"}).status_code == 200
    both = make_client(workspace, scopes="health:read,customers:read")
    assert both.get("/v1/health/summary", {"owner": "owner@secret.example"}).json()["total_customers"] == 1


def test_a_forbidden_owner_filter_is_refused_before_it_is_validated(workspace, make_client):
    # A malformed owner must not answer differently (400) from a well-formed one (403).
    response = make_client(workspace, scopes="health:read").get(
        "/v1/health/summary", {"owner": "not-an-email"}
    )
    assert response.status_code == 403
