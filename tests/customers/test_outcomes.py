"""Recorded churn: churned_at on the customer API, the outcome history, customer.churned."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import pytest
from django.test import override_settings
from django.utils import timezone

from customers.models import Customer, Outcome
from tests.platform.helpers import assert_error
from webhooks.models import WebhookMessage
from webhooks.services import webhook_endpoint_create


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _outcomes(client, customer_id: str, query: str = "") -> list[dict]:
    response = client.get(f"/v1/customers/{customer_id}/outcomes{query}")
    assert response.status_code == 200, response.content
    return response.json()["data"]


def _kinds(client, customer_id: str) -> list[tuple[str, str]]:
    return [(o["kind"], o["source"]) for o in _outcomes(client, customer_id)]


@pytest.fixture
def outbox(workspace):
    """An endpoint subscribed to customer events; the test transaction never commits, so nothing
    is delivered and the messages stay in the outbox table to be read."""
    with override_settings(PERLY_WEBHOOK_ALLOW_PRIVATE_URLS=True):
        endpoint, _ = webhook_endpoint_create(
            workspace_id=workspace.id,
            data={"url": "http://127.0.0.1:9/hook", "events": ["customer.churned", "customer.updated"]},
        )

    def events(event_type: str) -> list[dict]:
        rows = WebhookMessage.objects.filter(endpoint=endpoint, event_type=event_type).order_by("created_at")
        return [orjson.loads(row.payload) for row in rows]

    return events


def test_setting_the_stage_to_churned_stamps_now_and_records_an_outcome(client, customer, outbox):
    before = timezone.now().replace(microsecond=0)
    response = client.patch(f"/v1/customers/{customer['id']}", {"lifecycle_stage": "churned"})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["lifecycle_stage"] == "churned"
    stamped = datetime.fromisoformat(body["churned_at"].replace("Z", "+00:00"))
    assert before <= stamped <= timezone.now()
    [outcome] = _outcomes(client, customer["id"])
    assert outcome == {
        "id": outcome["id"],
        "object": "outcome",
        "customer": customer["id"],
        "kind": "churned",
        "at": body["churned_at"],
        "source": "api",
    }
    assert outcome["id"].startswith("out_")
    [event] = outbox("customer.churned")
    assert event["data"]["object"] == body
    [updated] = outbox("customer.updated")
    assert updated["data"]["previous_attributes"] == {"lifecycle_stage": None, "churned_at": None}


def test_backdated_churned_at_sets_the_stage_and_is_readable(client, customer, outbox):
    at = "2024-03-01T12:00:00Z"
    body = client.patch(f"/v1/customers/{customer['id']}", {"churned_at": at}).json()
    assert (body["churned_at"], body["lifecycle_stage"]) == (at, "churned")
    assert client.get(f"/v1/customers/{customer['id']}").json()["churned_at"] == at
    # Lists read it as text (customers.selectors), with and without a filter.
    for query in ("", "?churned_after=2024-01-01"):
        [listed] = client.get(f"/v1/customers{query}").json()["data"]
        assert listed == body
    assert [o["at"] for o in _outcomes(client, customer["id"])] == [at]
    assert len(outbox("customer.churned")) == 1


def test_win_back_keeps_the_churn_in_the_history_and_clears_churned_at(client, customer, outbox):
    client.patch(f"/v1/customers/{customer['id']}", {"churned_at": "2024-03-01T00:00:00Z"})
    body = client.patch(f"/v1/customers/{customer['id']}", {"lifecycle_stage": "active"}).json()
    assert (body["churned_at"], body["lifecycle_stage"]) == (None, "active")
    outcomes = _outcomes(client, customer["id"])
    assert [(o["kind"], o["source"]) for o in outcomes] == [("reactivated", "api"), ("churned", "api")]
    assert outcomes[1]["at"] == "2024-03-01T00:00:00Z"
    # Churn again later: a second churn, the first one still there.
    client.patch(f"/v1/customers/{customer['id']}", {"lifecycle_stage": "churned"})
    assert [kind for kind, _ in _kinds(client, customer["id"])] == ["churned", "reactivated", "churned"]
    assert len(outbox("customer.churned")) == 2


def test_clearing_churned_at_is_a_win_back_to_active(client, customer):
    client.patch(f"/v1/customers/{customer['id']}", {"lifecycle_stage": "churned"})
    body = client.patch(f"/v1/customers/{customer['id']}", {"churned_at": None}).json()
    assert (body["churned_at"], body["lifecycle_stage"]) == (None, "active")
    assert _kinds(client, customer["id"]) == [("reactivated", "api"), ("churned", "api")]


def test_changing_the_date_of_an_open_churn_corrects_it(client, customer, outbox):
    client.patch(f"/v1/customers/{customer['id']}", {"churned_at": "2024-03-01T00:00:00Z"})
    client.patch(f"/v1/customers/{customer['id']}", {"churned_at": "2024-02-01T00:00:00Z"})
    assert [o["at"] for o in _outcomes(client, customer["id"])] == ["2024-02-01T00:00:00Z"]
    assert len(outbox("customer.churned")) == 1  # one churn, its date corrected


def test_unrelated_updates_record_nothing(client, customer, outbox):
    client.patch(f"/v1/customers/{customer['id']}", {"lifecycle_stage": "churned"})
    client.patch(f"/v1/customers/{customer['id']}", {"plan": "pro", "lifecycle_stage": "churned"})
    assert len(_outcomes(client, customer["id"])) == 1
    assert len(outbox("customer.churned")) == 1


def test_create_churned_records_the_outcome(client, outbox):
    response = client.post("/v1/customers", {"name": "Gone", "churned_at": "2023-05-05T05:05:05Z"})
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["lifecycle_stage"], body["churned_at"]) == ("churned", "2023-05-05T05:05:05Z")
    assert _kinds(client, body["id"]) == [("churned", "api")]
    assert [e["data"]["object"]["id"] for e in outbox("customer.churned")] == [body["id"]]


@pytest.mark.parametrize("method", ["post", "patch"])
def test_churned_at_in_the_future_is_a_400_and_changes_nothing(client, customer, method):
    future = _iso(timezone.now() + timedelta(hours=1))
    if method == "post":
        response = client.post("/v1/customers", {"name": "Later", "churned_at": future})
    else:
        response = client.patch(f"/v1/customers/{customer['id']}", {"churned_at": future})
    error = assert_error(response, 400, "invalid_request_error", "parameter_invalid", param="churned_at")
    assert "future" in error["message"]
    assert Customer.objects.filter(name="Later").count() == 0
    assert not Outcome.objects.exists()
    assert client.get(f"/v1/customers/{customer['id']}").json()["churned_at"] is None


@pytest.mark.parametrize(
    "body",
    [
        {"churned_at": "2024-01-01T00:00:00Z", "lifecycle_stage": "active"},
        {"churned_at": None, "lifecycle_stage": "churned"},
        {"churned_at": "1969-12-31T23:59:59Z"},
        {"churned_at": "yesterday"},
    ],
)
def test_inconsistent_or_invalid_churn_input_is_a_400(client, customer, body):
    response = client.patch(f"/v1/customers/{customer['id']}", body, format="json")
    assert_error(response, 400, "invalid_request_error", "parameter_invalid", param="churned_at")
    assert not Outcome.objects.exists()


def test_a_churn_before_the_last_outcome_is_a_400(client, customer):
    client.patch(f"/v1/customers/{customer['id']}", {"lifecycle_stage": "churned"})
    client.patch(f"/v1/customers/{customer['id']}", {"lifecycle_stage": "active"})
    response = client.patch(f"/v1/customers/{customer['id']}", {"churned_at": "2020-01-01T00:00:00Z"})
    error = assert_error(response, 400, "invalid_request_error", "parameter_invalid", param="churned_at")
    assert "last recorded outcome" in error["message"]
    assert len(_outcomes(client, customer["id"])) == 2


def test_outcomes_are_newest_first_and_paginated(client, customer):
    changes = ({"churned_at": "2024-01-01T00:00:00Z"}, {"lifecycle_stage": "active"})
    for change in (*changes, {"lifecycle_stage": "churned"}, {"lifecycle_stage": "active"}):
        response = client.patch(f"/v1/customers/{customer['id']}", change)
        assert response.status_code == 200, response.content
    everything = _outcomes(client, customer["id"])
    ats = [o["at"] for o in everything]
    assert ats == sorted(ats, reverse=True) and len(ats) == 4
    first = client.get(f"/v1/customers/{customer['id']}/outcomes?limit=3").json()
    assert first["has_more"] is True and first["url"] == f"/v1/customers/{customer['id']}/outcomes"
    rest = _outcomes(client, customer["id"], f"?limit=3&starting_after={first['data'][-1]['id']}")
    assert first["data"] + rest == everything
    back = _outcomes(client, customer["id"], f"?ending_before={rest[0]['id']}")
    assert back == first["data"]


def test_outcomes_of_another_workspace_are_404(client, other_client, customer):
    client.patch(f"/v1/customers/{customer['id']}", {"lifecycle_stage": "churned"})
    response = other_client.get(f"/v1/customers/{customer['id']}/outcomes")
    assert_error(
        response, 404, "invalid_request_error", "resource_missing", f"No such customer: '{customer['id']}'."
    )
    for missing in ("cus_00000000000000000000000000", "nope"):
        assert client.get(f"/v1/customers/{missing}/outcomes").status_code == 404


def test_a_cursor_from_another_customer_is_a_400(client, customer):
    other = client.post("/v1/customers", {"name": "Other", "lifecycle_stage": "churned"}).json()
    [theirs] = _outcomes(client, other["id"])
    response = client.get(f"/v1/customers/{customer['id']}/outcomes?starting_after={theirs['id']}")
    assert_error(response, 400, "invalid_request_error", "parameter_invalid", param="starting_after")


def test_outcomes_need_the_customers_read_scope(make_client, workspace, customer):
    health_only = make_client(workspace, scopes="health:read")
    response = health_only.get(f"/v1/customers/{customer['id']}/outcomes")
    assert_error(response, 403, "permission_error", "insufficient_permissions")
    reader = make_client(workspace, scopes="customers:read")
    assert reader.get(f"/v1/customers/{customer['id']}/outcomes").status_code == 200


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("churned_after=2024-02-01", ["March"]),
        ("churned_before=2024-02-01", ["January"]),
        ("churned_after=2024-01-01&churned_before=2024-03-01T00:00:00Z", ["January"]),
        ("churned_after=2025-01-01", []),
    ],
)
def test_churned_filters(client, query, expected):
    client.post("/v1/customers", {"name": "January", "churned_at": "2024-01-15T00:00:00Z"})
    client.post("/v1/customers", {"name": "March", "churned_at": "2024-03-01T00:00:00Z"})
    client.post("/v1/customers", {"name": "Stayer"})
    response = client.get(f"/v1/customers?{query}")
    assert response.status_code == 200, response.content
    assert [c["name"] for c in response.json()["data"]] == expected


@pytest.mark.parametrize("param", ["churned_after", "churned_before"])
def test_an_invalid_churned_filter_is_a_400(client, param):
    response = client.get(f"/v1/customers?{param}=2024-13-01")
    assert_error(response, 400, "invalid_request_error", "parameter_invalid", param=param)


def _admin_change(admin_client, workspace, customer_id: str, **fields):
    form = {"workspace": workspace.pk, "name": "Initech", "metadata": "{}", **fields}
    return admin_client.post(f"/admin/customers/customer/{customer_id}/change/", form)


def test_admin_churn_and_win_back_are_recorded_with_source_admin(admin_client, workspace, client, customer):
    response = _admin_change(
        admin_client, workspace, customer["id"], churned_at_0="2024-06-01", churned_at_1="10:00:00"
    )
    assert response.status_code == 302, response.content
    body = client.get(f"/v1/customers/{customer['id']}").json()
    assert (body["churned_at"], body["lifecycle_stage"]) == ("2024-06-01T10:00:00Z", "churned")
    page = admin_client.get(f"/admin/customers/customer/{customer['id']}/change/").content.decode()
    assert "Recorded churns and win-backs" in page and "2024-06-01 10:00" in page
    # Win-back: the stage moves to active, the date field still shows the old churn.
    response = _admin_change(
        admin_client,
        workspace,
        customer["id"],
        lifecycle_stage="active",
        churned_at_0="2024-06-01",
        churned_at_1="10:00:00",
    )
    assert response.status_code == 302, response.content
    # From the table: the response cache is invalidated on commit, which a test never reaches.
    stored = Customer.objects.get(pk=customer["id"])
    assert (stored.churned_at, stored.lifecycle_stage) == (None, "active")
    assert _kinds(client, customer["id"]) == [("reactivated", "admin"), ("churned", "admin")]


def test_admin_stage_churned_without_a_date_stamps_now(admin_client, workspace, client):
    response = admin_client.post(
        "/admin/customers/customer/add/",
        {"workspace": workspace.pk, "name": "Hooli", "lifecycle_stage": "churned", "metadata": "{}"},
    )
    assert response.status_code == 302, response.content
    hooli = Customer.objects.get(name="Hooli")
    assert hooli.churned_at is not None and hooli.lifecycle_stage == "churned"
    assert _kinds(client, hooli.id) == [("churned", "admin")]


def test_admin_future_churn_is_a_form_error(admin_client, workspace, client, customer):
    future = timezone.now() + timedelta(days=2)
    response = _admin_change(
        admin_client, workspace, customer["id"], churned_at_0=f"{future:%Y-%m-%d}", churned_at_1="10:00:00"
    )
    assert response.status_code == 200
    assert "churned_at must not be in the future." in response.content.decode()
    assert not Outcome.objects.exists()


def test_admin_edit_of_other_fields_keeps_a_stamped_churn(admin_client, workspace, client):
    admin_client.post(
        "/admin/customers/customer/add/",
        {"workspace": workspace.pk, "name": "Hooli", "lifecycle_stage": "churned", "metadata": "{}"},
    )
    hooli = Customer.objects.get(name="Hooli")
    # The form shows the date to the second; saving it back unchanged is not a correction.
    response = admin_client.post(
        f"/admin/customers/customer/{hooli.id}/change/",
        {
            "name": "Hooli",
            "plan": "pro",
            "lifecycle_stage": "churned",
            "churned_at_0": f"{hooli.churned_at:%Y-%m-%d}",
            "churned_at_1": f"{hooli.churned_at:%H:%M:%S}",
            "metadata": "{}",
        },
    )
    assert response.status_code == 302, response.content
    stored = Customer.objects.get(pk=hooli.id)
    assert (stored.plan, stored.churned_at) == ("pro", hooli.churned_at)
    assert list(Outcome.objects.filter(customer=stored).values_list("at", flat=True)) == [hooli.churned_at]
