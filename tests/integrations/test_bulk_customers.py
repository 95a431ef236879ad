"""A sync creates a page's customers in one batch (customers.services.customers_create_bulk):
the customers and their customer.created webhooks must be exactly what one-by-one creation gives."""

from __future__ import annotations

import json

import pytest
from django.test import override_settings

from customers.models import Customer
from customers.services import customers_create_bulk
from perly.errors import ApiError
from tests.integrations.conftest import STRIPE_KEY, connect
from tests.integrations.helpers import records
from tests.support.worker import wait_for
from tests.webhooks.receiver import Receiver

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def receiver():
    with override_settings(PERLY_WEBHOOK_ALLOW_PRIVATE_URLS=True), Receiver() as live:
        yield live


def _events(receiver: Receiver, event_type: str) -> list[dict]:
    bodies = [json.loads(r.body) for r in receiver.requests]
    return [b for b in bodies if b["type"] == event_type]


def test_synced_customers_get_the_same_customer_created_webhook_as_api_customers(
    client, fake_stripe, receiver
):
    response = client.post("/v1/webhooks", {"url": receiver.url(), "events": ["customer.created"]})
    assert response.status_code == 201, response.content
    by_api = client.post("/v1/customers", {"name": "Initech", "email": "ap@initech.com"}).json()
    for i in range(3):
        fake_stripe.add_customer(email=f"billing@co{i}.example.com", name=f"Co {i}")

    integration = connect(client, "stripe", {"api_key": STRIPE_KEY}).json()

    assert integration["last_sync"]["stats"]["customers_created"] == 3
    events = wait_for(
        lambda: len(_events(receiver, "customer.created")) == 4 and _events(receiver, "customer.created")
    )
    payloads = {e["data"]["object"]["id"]: e for e in events}
    assert len(payloads) == 4 and len({e["id"] for e in events}) == 4  # one message per customer
    api_event = payloads.pop(by_api["id"])
    for customer_id, event in payloads.items():
        assert set(event) == set(api_event)
        assert event["data"]["previous_attributes"] is None
        stored = client.get(f"/v1/customers/{customer_id}").json()
        assert {**event["data"]["object"], "health": None} == {**stored, "health": None}
    assert sorted(e["data"]["object"]["email"] for e in payloads.values()) == [
        f"billing@co{i}.example.com" for i in range(3)
    ]


def test_bulk_create_is_all_or_nothing_on_a_taken_external_id(workspace):
    customers_create_bulk(workspace_id=workspace.pk, rows=[{"name": "First", "external_id": "acct_1"}])

    with pytest.raises(ApiError) as taken:
        customers_create_bulk(
            workspace_id=workspace.pk,
            rows=[{"name": "Second", "external_id": "acct_2"}, {"name": "Clash", "external_id": "acct_1"}],
        )
    with pytest.raises(ApiError) as repeated:
        customers_create_bulk(
            workspace_id=workspace.pk,
            rows=[{"name": "A", "external_id": "acct_3"}, {"name": "B", "external_id": "acct_3"}],
        )

    assert (taken.value.status, taken.value.code, taken.value.param) == (
        409,
        "resource_already_exists",
        "external_id",
    )
    assert repeated.value.code == "resource_already_exists"
    assert sorted(Customer.objects.values_list("name", flat=True)) == ["First"]


def test_bulk_create_fills_defaults_like_one_by_one_creation(workspace):
    created = customers_create_bulk(
        workspace_id=workspace.pk, rows=[{"name": "Plain"}, {"name": "Tagged", "metadata": {"tier": "gold"}}]
    )

    stored = {c.name: c for c in Customer.objects.filter(workspace=workspace)}
    assert [c.pk for c in created] == [stored["Plain"].pk, stored["Tagged"].pk]
    assert stored["Plain"].metadata == {} and stored["Tagged"].metadata == {"tier": "gold"}
    assert stored["Plain"].created_at == stored["Plain"].updated_at
    assert customers_create_bulk(workspace_id=workspace.pk, rows=[]) == []


def test_accounts_sharing_a_domain_on_one_page_map_to_one_new_customer(client, fake_stripe):
    fake_stripe.add_customer(email="billing@hooli.com", name="Hooli Billing", created=1_700_000_002)
    fake_stripe.add_customer(email="ops@hooli.com", name="Hooli Ops", created=1_700_000_001)

    integration = connect(client, "stripe", {"api_key": STRIPE_KEY}).json()

    stats = integration["last_sync"]["stats"]
    assert (stats["customers_created"], stats["customers_matched"]) == (1, 1)
    created = Customer.objects.get()
    assert (created.name, created.email, created.domain) == (
        "Hooli Billing",
        "billing@hooli.com",
        "hooli.com",
    )
    links = {r.provider_id: r.customer_id for r in records(integration["id"], "customers")}
    assert set(links.values()) == {created.pk}
