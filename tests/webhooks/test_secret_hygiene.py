"""The signing secret is shown twice (create, rotate) and nowhere else: not in GET, lists, logs,
admin pages or the database in clear."""

from __future__ import annotations

import logging

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from webhooks.models import WebhookEndpoint, WebhookMessage

pytestmark = pytest.mark.django_db


def secret_parts(secret: str) -> list[str]:
    return [secret, secret.removeprefix("whsec_")]


@pytest.fixture
def staff():
    user = get_user_model().objects.create_superuser("root", "root@perly.test", "pw-for-tests-only")
    browser = Client()
    browser.force_login(user)
    return browser


def test_secret_never_reaches_the_logs(client, publish, receiver, endpoint, caplog):
    caplog.set_level(logging.DEBUG)
    rotated = client.post(f"/v1/webhooks/{endpoint['id']}/rotate_secret").json()["secret"]
    publish("post", "/v1/customers", {"name": "Initech"})
    client.get(f"/v1/webhooks/{endpoint['id']}")
    client.post(f"/v1/webhooks/{endpoint['id']}/test")
    assert receiver.received()
    for part in secret_parts(endpoint["secret"]) + secret_parts(rotated):
        assert part not in caplog.text


def test_secret_never_appears_in_get_or_list(client, endpoint):
    rotated = client.post(f"/v1/webhooks/{endpoint['id']}/rotate_secret").json()["secret"]
    pages = client.get(f"/v1/webhooks/{endpoint['id']}").content + client.get("/v1/webhooks").content
    for part in secret_parts(endpoint["secret"]) + secret_parts(rotated):
        assert part.encode() not in pages


def test_secret_never_appears_in_admin_pages(staff, publish, receiver, endpoint):
    publish("post", "/v1/customers", {"name": "Initech"})
    row = WebhookEndpoint.objects.get(pk=endpoint["id"])
    message = WebhookMessage.objects.get()
    pages = [
        "/admin/webhooks/webhookendpoint/",
        f"/admin/webhooks/webhookendpoint/{row.pk}/change/",
        "/admin/webhooks/webhookmessage/",
        f"/admin/webhooks/webhookmessage/{message.pk}/change/",
        "/admin/webhooks/webhookattempt/",
    ]
    for page in pages:
        response = staff.get(page)
        assert response.status_code == 200, page
        html = response.content.decode()
        for part in [*secret_parts(endpoint["secret"]), row.secret_encrypted]:
            assert part not in html, page


def test_admin_actions_call_the_services(
    staff, publish, receiver, endpoint, django_capture_on_commit_callbacks
):
    url = "/admin/webhooks/webhookendpoint/"
    staff.post(url, {"action": "disable_endpoints", "_selected_action": [endpoint["id"]]})
    row = WebhookEndpoint.objects.get(pk=endpoint["id"])
    assert (row.status, row.disabled_reason) == ("disabled", "Disabled by Perly staff (root).")

    staff.post(url, {"action": "enable_endpoints", "_selected_action": [endpoint["id"]]})
    before = row.secret_encrypted
    staff.post(url, {"action": "rotate_secrets", "_selected_action": [endpoint["id"]]})
    row.refresh_from_db()
    assert row.status == "enabled"
    assert row.secret_encrypted != before and row.previous_secret_encrypted == before

    from tests.webhooks.receiver import Reply

    receiver.script("/hook", Reply(400), Reply(200))
    publish("post", "/v1/customers", {"name": "Initech"})
    message = WebhookMessage.objects.get()
    assert message.status == "failed"
    filtered = staff.get("/admin/webhooks/webhookmessage/?status__exact=failed")
    assert message.pk in filtered.content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        staff.post(
            "/admin/webhooks/webhookmessage/", {"action": "retry_now", "_selected_action": [message.pk]}
        )
    message.refresh_from_db()
    assert (message.status, message.attempt_count) == ("delivered", 2)
