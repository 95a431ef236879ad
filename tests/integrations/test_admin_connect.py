"""The admin's Connect page: the API's validation and service, the same error sentences."""

from __future__ import annotations

import pytest

from integrations.models import Integration
from tests.integrations.conftest import STRIPE_KEY


def _post(admin_client, workspace, api_key: str):
    return admin_client.post(
        "/admin/integrations/integration/connect/stripe/",
        {
            "workspace": workspace.pk,
            "api_key": api_key,
            "sync_interval_minutes": "60",
            "create_customers": "on",
        },
    )


@pytest.mark.django_db(transaction=True)
def test_connect_page_connects_and_redirects_to_the_integration(admin_client, workspace, fake_stripe):
    response = _post(admin_client, workspace, STRIPE_KEY)

    integration = Integration.objects.get(workspace=workspace)
    assert response.status_code == 302
    assert response["Location"] == f"/admin/integrations/integration/{integration.pk}/change/"
    assert integration.credentials_hint == {"api_key": "sk_…p7dc"}


@pytest.mark.django_db
def test_refused_key_shows_the_providers_reason_in_one_sentence(admin_client, workspace, fake_stripe):
    page = _post(admin_client, workspace, "sk_test_wrongwrongwrongwrong1234").content.decode()

    assert "Stripe refused these credentials: Invalid API Key" in page
    assert "wrongwrong" not in page  # neither echoed in the form nor in the message
    assert not Integration.objects.exists()


@pytest.mark.django_db
def test_a_key_the_api_refuses_is_refused_with_the_apis_words(admin_client, workspace):
    page = _post(admin_client, workspace, "pk_live_not_a_secret_key").content.decode()

    assert "api_key must be a Stripe secret (sk_...) or restricted (rk_...) key." in page
    assert not Integration.objects.exists()


@pytest.mark.django_db
def test_empty_list_explains_what_connecting_does(admin_client, workspace):
    page = admin_client.get("/admin/integrations/integration/").content.decode()

    assert "No integration here yet." in page
    assert 'href="/admin/integrations/integration/connect/hubspot/">Connect HubSpot<' in page
