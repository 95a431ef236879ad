"""A webhook host that does not resolve yet is accepted at creation (and update); every attempt
resolves it again: still unresolvable is a retried connection error, a refused address fails the
attempt with url_not_allowed. The README and the API's description say exactly that."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from django.test import override_settings

from webhooks.models import WebhookAttempt, WebhookMessage

pytestmark = pytest.mark.django_db

README = Path(__file__).resolve().parents[2] / "README.md"


@pytest.fixture(autouse=True)
def strict():
    with override_settings(PERLY_WEBHOOK_ALLOW_PRIVATE_URLS=False):
        yield


def _nxdomain():
    raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")


def test_an_unresolvable_host_is_accepted_then_checked_on_every_attempt(
    client, fake_dns, publish, attempt_again
):
    answers = {"new.example": _nxdomain}
    fake_dns({"new.example": lambda: answers["new.example"]()})
    response = client.post("/v1/webhooks", {"url": "https://new.example/hook", "events": ["*"]})
    assert response.status_code == 201, response.content
    endpoint = response.json()

    publish("post", "/v1/customers", {"name": "Initech"})
    message = WebhookMessage.objects.get(endpoint_id=endpoint["id"])
    first = WebhookAttempt.objects.get(message=message)
    message.refresh_from_db()
    assert first.error.startswith("connection_error:")
    assert message.status == "pending"  # retried: DNS may still be catching up

    answers["new.example"] = lambda: "10.0.0.7"  # it now resolves, to a private address
    attempt_again(message.pk)
    message.refresh_from_db()
    last = WebhookAttempt.objects.filter(message=message).order_by("-created_at", "-id").first()
    assert last.error == (
        "url_not_allowed: Webhook URLs must point to public addresses: "
        "new.example resolves to 10.0.0.7 (private (10.0.0.0/8))."
    )
    assert message.status == "failed"


def test_an_update_to_an_unresolvable_host_is_accepted_and_to_a_private_one_refused(client, fake_dns):
    fake_dns({"hooks.example.com": "93.184.215.14", "later.example": _nxdomain, "inside.example": "10.1.2.3"})
    endpoint = client.post("/v1/webhooks", {"url": "https://hooks.example.com/x", "events": ["*"]}).json()
    assert (
        client.patch(f"/v1/webhooks/{endpoint['id']}", {"url": "https://later.example/x"}).status_code == 200
    )
    refused = client.patch(f"/v1/webhooks/{endpoint['id']}", {"url": "https://inside.example/x"})
    assert (refused.status_code, refused.json()["error"]["code"]) == (400, "url_not_allowed")


def test_the_readme_says_what_happens_to_a_host_that_does_not_resolve():
    text = " ".join(README.read_text().split())
    assert "resolves only to public addresses (else 400" not in text  # what it used to promise
    assert (
        "A host that does not resolve at creation (or update) is accepted: DNS for a new receiver "
        "may not have propagated yet." in text
    )
    assert "while it still does not resolve, the attempt is a connection error and is retried" in text


def test_the_api_description_of_url_says_it_too(anon_client):
    spec = anon_client.get("/v1/openapi.json").json()
    url = spec["components"]["schemas"]["WebhookEndpoint"]["properties"]["url"]
    assert (
        "a host that does not resolve yet is accepted and checked again on every attempt"
        in url["description"]
    )
