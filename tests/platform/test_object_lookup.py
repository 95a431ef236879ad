"""perly.lookup: a retrieve reuses its compiled SQL, and anything it cannot reuse takes the ORM."""

from __future__ import annotations

import pytest

from customers.api.views import CustomerViewSet
from customers.models import Customer
from perly import lookup


def test_retrieve_reuses_one_compiled_query(
    client, customer, other_client, django_assert_num_queries, settings
):
    settings.PERLY_RETRIEVE_CACHE_SECONDS = 0  # the database lookup, not a cached response
    lookup._plans.pop(CustomerViewSet, None)
    assert client.get(f"/v1/customers/{customer['id']}").json() == customer
    plan = lookup._plans[CustomerViewSet]
    assert isinstance(plan, lookup._Plan)
    assert '"workspace_id" = %s' in plan.sql and '"deleted_at" IS NULL' in plan.sql
    with django_assert_num_queries(1):
        assert client.get(f"/v1/customers/{customer['id']}").json() == customer
    assert other_client.get(f"/v1/customers/{customer['id']}").status_code == 404


def test_values_come_back_converted(workspace, customer):
    found = lookup.fetch_one(
        type("V", (), {}), lambda ws: Customer.objects.filter(workspace_id=ws), workspace.id, customer["id"]
    )
    assert found.metadata == {} and found.created_at.tzinfo is not None
    assert found.name == "Initech" and found._state.adding is False


def test_queryset_with_other_parameters_is_not_cached(workspace, customer):
    class Narrowed:
        pass

    def scoped(ws):
        return Customer.objects.filter(workspace_id=ws, name="Initech")

    assert lookup.fetch_one(Narrowed, scoped, workspace.id, customer["id"]).id == customer["id"]
    assert lookup._plans[Narrowed] is lookup._NOT_CACHEABLE

    def other_name(ws):
        return Customer.objects.filter(workspace_id=ws, name="Other")

    class Narrowed2:
        pass

    assert lookup.fetch_one(Narrowed2, other_name, workspace.id, customer["id"]) is None


def test_unknown_id_and_other_workspace_are_none(workspace, other_workspace, customer):
    class View:
        pass

    def scoped(ws):
        return Customer.objects.filter(workspace_id=ws)

    assert lookup.fetch_one(View, scoped, workspace.id, "cus_000000000000000000000000aa") is None
    assert lookup.fetch_one(View, scoped, other_workspace.id, customer["id"]) is None
    assert lookup.fetch_one(View, scoped, workspace.id, customer["id"]).id == customer["id"]


def test_a_compiled_list_plan_serves_every_workspace_and_cursor(
    client, other_client, django_assert_num_queries
):
    """The unfiltered list's SQL is compiled once per page size and direction, then reused with
    each request's own workspace and cursor."""
    lookup._row_plans.clear()
    mine = [client.post("/v1/customers", {"name": f"Mine {n}"}).json()["id"] for n in range(5)]
    theirs = [other_client.post("/v1/customers", {"name": f"Theirs {n}"}).json()["id"] for n in range(3)]

    def ids(c, query=""):
        body = c.get(f"/v1/customers?limit=2{query}").json()
        return [row["id"] for row in body["data"]], body["has_more"]

    assert ids(client) == (mine[::-1][:2], True)
    with django_assert_num_queries(1):
        assert ids(other_client) == (theirs[::-1][:2], True)
    assert ids(client, f"&starting_after={mine[3]}") == ([mine[2], mine[1]], True)
    assert ids(other_client, f"&starting_after={theirs[1]}") == ([theirs[0]], False)
    assert ids(client, f"&ending_before={mine[1]}") == ([mine[3], mine[2]], True)
    assert ids(other_client, f"&ending_before={theirs[0]}") == ([theirs[2], theirs[1]], False)
    assert {key[1:] for key in lookup._row_plans} == {(2, "first"), (2, "after"), (2, "before")}


def test_a_list_query_with_a_real_filter_value_is_never_compiled_for_reuse(workspace):
    """Reusing SQL that holds one request's filter value would answer the next request with it."""
    lookup._row_plans.pop(("filtered",), None)
    build = lambda: Customer.objects.filter(workspace_id=lookup.WORKSPACE, plan="growth").values_list("id")  # noqa: E731
    with pytest.raises(ValueError, match="cannot be reused"):
        lookup.fetch_rows(("filtered",), build, {lookup.WORKSPACE: workspace.id})
