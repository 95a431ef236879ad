"""Connecting Stripe through the admin, against the local Stripe fake."""

from __future__ import annotations

import pytest
from django.test import override_settings

from integrations.models import Integration
from perly.services import workspace_create
from tests.browser.conftest import docs_screenshot
from tests.integrations.conftest import STRIPE_KEY
from tests.integrations.fakes.stripe import FakeStripe


@pytest.fixture
def fake_stripe():
    fake = FakeStripe(api_keys=(STRIPE_KEY,)).start()
    fake.add_customer(email="billing@initech.com", name="Initech")
    with override_settings(STRIPE_API_BASE=fake.url):
        yield fake
    fake.stop()


def test_connect_stripe_from_the_empty_integrations_page(page, fake_stripe):
    workspace = workspace_create(slug="initech", name="Initech")
    page.goto("/admin/integrations/integration/")
    assert "No integration here yet." in page.locator("#integrations-empty").inner_text()

    page.click("a.connect-stripe")
    page.select_option("#id_workspace", label="initech")
    page.fill("#id_api_key", "sk_test_wrongwrongwrongwrong1234")
    page.click("#connect-form input[type=submit]")

    assert (
        page.locator("#connect-error")
        .inner_text()
        .startswith("Stripe refused these credentials: Invalid API Key")
    )
    docs_screenshot(page, "connect")

    page.fill("#id_api_key", STRIPE_KEY)
    page.click("#connect-form input[type=submit]")

    page.wait_for_url("**/admin/integrations/integration/int_*/change/")
    assert "Connected Stripe to initech" in page.locator(".messagelist").inner_text()
    integration = Integration.objects.get(workspace=workspace)
    assert integration.provider == "stripe" and integration.credentials_hint == {"api_key": "sk_…p7dc"}
    assert fake_stripe.requests_to("/v1/customers")
