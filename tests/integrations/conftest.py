"""Fake providers on 127.0.0.1, with the base-URL settings pointing at them."""

from __future__ import annotations

import pytest
from django.test import override_settings

from tests.integrations.fakes.hubspot import FakeHubSpot
from tests.integrations.fakes.salesforce import FakeSalesforce
from tests.integrations.fakes.stripe import FakeStripe

STRIPE_KEY = "sk_test_4eC39HqLyjWDarjtT1zdp7dc"
HUBSPOT_TOKEN = "pat-na1-11111111-2222-3333-4444-555555555555"
SALESFORCE_CLIENT = {
    "client_id": "3MVG9fakeClientId000000000000",
    "client_secret": "fake-client-secret-0123456789abcdef",
}


@pytest.fixture(autouse=True)
def _fast_retries():
    # Backoff without Retry-After is exercised at a tiny scale; Retry-After itself is honoured.
    with override_settings(INTEGRATIONS_RETRY_BASE_SECONDS=0.01, INTEGRATIONS_RETRY_MAX_SECONDS=0.05):
        yield


@pytest.fixture
def fake_stripe():
    fake = FakeStripe(api_keys=(STRIPE_KEY,)).start()
    with override_settings(STRIPE_API_BASE=fake.url):
        yield fake
    fake.stop()


@pytest.fixture
def fake_hubspot():
    fake = FakeHubSpot(tokens=(HUBSPOT_TOKEN,)).start()
    with override_settings(HUBSPOT_API_BASE=fake.url):
        yield fake
    fake.stop()


@pytest.fixture
def fake_salesforce():
    fake = FakeSalesforce(
        clients=((SALESFORCE_CLIENT["client_id"], SALESFORCE_CLIENT["client_secret"]),), batch_size=2
    ).start()
    with override_settings(SALESFORCE_LOGIN_URL=fake.url):
        yield fake
    fake.stop()


def connect(client, provider: str, credentials: dict, **config):
    body = {"provider": provider, "credentials": credentials}
    if config:
        body["config"] = config
    return client.post("/v1/integrations", body, format="json")


@pytest.fixture
def connect_stripe(client, fake_stripe):
    def make(**config):
        response = connect(client, "stripe", {"api_key": STRIPE_KEY}, **config)
        assert response.status_code == 201, response.content
        return response.json()

    return make
