"""Reliability fixtures: an offline DNS, in-process WSGI calls inside a test transaction, fake
providers, and a workspace seeded with one object of every kind."""

from __future__ import annotations

import socket
from dataclasses import dataclass

import pytest
from django.test import override_settings

from tests.integrations.fakes.hubspot import FakeHubSpot
from tests.integrations.fakes.salesforce import FakeSalesforce
from tests.integrations.fakes.stripe import FakeStripe

STRIPE_KEY = "sk_test_4eC39HqLyjWDarjtT1zdp7dc"
HUBSPOT_TOKEN = "pat-na1-11111111-2222-3333-4444-555555555555"
SALESFORCE_CLIENT_ID = "3MVG9fakeClientId000000000000"
SALESFORCE_CLIENT_SECRET = "fake-client-secret-0123456789abcdef"
# Webhook URLs the tests create; the offline DNS never resolves them, so no delivery leaves.
WEBHOOK_URL = "https://hooks.example.com/perly"


@pytest.fixture
def offline_dns(monkeypatch):
    """Only localhost resolves: nothing a test creates can reach the network."""
    real = socket.getaddrinfo

    def getaddrinfo(host, *args, **kwargs):
        if host in ("127.0.0.1", "localhost", "::1"):
            return real(host, *args, **kwargs)
        raise socket.gaierror(socket.EAI_NONAME, f"{host}: offline in tests")

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


@pytest.fixture
def fake_providers():
    """Stripe, HubSpot and Salesforce fakes on 127.0.0.1, each accepting one known credential."""
    fakes = [
        FakeStripe(api_keys=(STRIPE_KEY,)).start(),
        FakeHubSpot(tokens=(HUBSPOT_TOKEN,)).start(),
        FakeSalesforce(clients=((SALESFORCE_CLIENT_ID, SALESFORCE_CLIENT_SECRET),)).start(),
    ]
    stripe, hubspot, salesforce = fakes
    with override_settings(
        STRIPE_API_BASE=stripe.url, HUBSPOT_API_BASE=hubspot.url, SALESFORCE_LOGIN_URL=salesforce.url
    ):
        yield {"stripe": stripe, "hubspot": hubspot, "salesforce": salesforce}
    for fake in fakes:
        fake.stop()


@dataclass
class Seeded:
    """One live object of every kind in a workspace, by the URL segment that names it."""

    customer: str
    event: str
    webhook: str
    message: str
    integration: str
    outcome: str
    metric: str
    backtest: str
    fit: str

    def by_segment(self) -> dict[str, str]:
        return {
            "metrics": self.metric,
            "customers": self.customer,
            "signals": self.customer,
            "events": self.event,
            "webhooks": self.webhook,
            "deliveries": self.message,
            "integrations": self.integration,
            "backtests": self.backtest,
            "fits": self.fit,
        }


def seed_workspace(api, **customer_fields) -> Seeded:
    """Create one of everything through the API, as a user would."""

    def created(response) -> dict:
        assert response.status_code in (200, 201, 202), response.content
        return response.json()

    fields = {"name": "Seeded Co", "email": "ops@seeded.example", **customer_fields}
    customer = created(api.post("/v1/customers", fields))
    # A backdated churn: the customer's outcome history has one entry.
    created(api.patch(f"/v1/customers/{customer['id']}", {"churned_at": "2026-01-06T00:00:00Z"}))
    outcome = api.get(f"/v1/customers/{customer['id']}/outcomes").json()["data"][0]
    created(
        api.post(
            "/v1/events",
            {
                "events": [
                    {"customer_id": customer["id"], "type": "login", "timestamp": "2026-01-05T10:00:00Z"}
                ]
            },
        )
    )
    event = api.get("/v1/events", {"customer": customer["id"]}).json()["data"][0]
    webhook = created(api.post("/v1/webhooks", {"url": WEBHOOK_URL, "events": ["*"]}))
    message = created(api.post(f"/v1/webhooks/{webhook['id']}/test"))
    integration = created(
        api.post("/v1/integrations", {"provider": "stripe", "credentials": {"api_key": STRIPE_KEY}})
    )
    # A key of this workspace only (derived from the customer id), so B's key is not also A's.
    metric = created(
        api.post(
            "/v1/health/metrics",
            {
                "key": "custom.seeded_" + customer["id"].split("_", 1)[1],
                "label": "Seeded exports",
                "category": "usage",
                "aggregate": "count",
                "event_types": ["export"],
                "window_days": 28,
            },
            format="json",
        )
    )
    # Jobs (they fail here, with too little history to measure: still objects of the workspace).
    backtest = created(api.post("/v1/health/backtests", {}, format="json"))
    fit = created(api.post("/v1/health/model/fit", {}, format="json"))
    return Seeded(
        customer["id"],
        event["id"],
        webhook["id"],
        message["id"],
        integration["id"],
        outcome["id"],
        metric["key"],
        backtest["id"],
        fit["id"],
    )
