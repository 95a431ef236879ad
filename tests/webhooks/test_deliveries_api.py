"""Deliveries: the endpoint's messages with their attempts, retry and the test event."""

from __future__ import annotations

import pytest

from tests.webhooks.conftest import verify
from tests.webhooks.receiver import Reply
from webhooks.models import WebhookMessage

pytestmark = pytest.mark.django_db


def test_deliveries_list_messages_with_their_attempts(client, publish, receiver, endpoint):
    receiver.script("/hook", Reply(500, b"try later"), Reply(200, b"thanks"))
    publish("post", "/v1/customers", {"name": "Initech"})
    message = WebhookMessage.objects.get()
    response = client.get(f"/v1/webhooks/{endpoint['id']}/deliveries")
    assert response.status_code == 200
    body = response.json()
    (item,) = body["data"]
    attempt = item["attempts"][0]
    assert body["url"] == f"/v1/webhooks/{endpoint['id']}/deliveries"
    assert item == {
        "id": message.id,
        "object": "webhook_message",
        "endpoint": endpoint["id"],
        "type": "customer.created",
        "status": "pending",
        "attempt_count": 1,
        "next_attempt_at": item["next_attempt_at"],
        "delivered_at": None,
        "last_error": "HTTP 500",
        "created_at": item["created_at"],
        "event": verify(endpoint["secret"], receiver.received()[0]),
        "attempts": [
            {
                "object": "webhook_attempt",
                "attempt_number": 1,
                "outcome": "retrying",
                "status_code": 500,
                "duration_ms": attempt["duration_ms"],
                "response_body": "try later",
                "error": "HTTP 500",
                "created_at": attempt["created_at"],
            }
        ],
    }


def test_deliveries_filter_by_status(client, publish, receiver, endpoint):
    receiver.script("/hook", Reply(200), Reply(400))
    publish("post", "/v1/customers", {"name": "Delivered Inc"})
    publish("post", "/v1/customers", {"name": "Failed Inc"})
    url = f"/v1/webhooks/{endpoint['id']}/deliveries"
    delivered = client.get(url, {"status": "delivered"}).json()["data"]
    failed = client.get(url, {"status": "failed"}).json()["data"]
    assert [m["event"]["data"]["object"]["name"] for m in delivered] == ["Delivered Inc"]
    assert [m["event"]["data"]["object"]["name"] for m in failed] == ["Failed Inc"]
    assert client.get(url, {"status": "pending"}).json()["data"] == []
    invalid = client.get(url, {"status": "lost"})
    assert invalid.status_code == 400
    assert invalid.json()["error"]["param"] == "status"


def test_deliveries_paginate_newest_first(client, publish, receiver, endpoint):
    for name in ("One", "Two", "Three"):
        publish("post", "/v1/customers", {"name": name})
    url = f"/v1/webhooks/{endpoint['id']}/deliveries"
    first = client.get(url, {"limit": 2}).json()
    assert first["has_more"] is True
    assert [m["event"]["data"]["object"]["name"] for m in first["data"]] == ["Three", "Two"]
    rest = client.get(url, {"limit": 2, "starting_after": first["data"][-1]["id"]}).json()
    assert [m["event"]["data"]["object"]["name"] for m in rest["data"]] == ["One"]
    assert rest["has_more"] is False


def test_retry_sends_a_failed_message_again(
    client, publish, receiver, endpoint, django_capture_on_commit_callbacks
):
    receiver.script("/hook", Reply(400), Reply(200))
    publish("post", "/v1/customers", {"name": "Initech"})
    message = WebhookMessage.objects.get()
    assert message.status == "failed"
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/v1/webhooks/{endpoint['id']}/deliveries/{message.id}/retry")
    assert response.status_code == 200
    assert (response.json()["id"], response.json()["status"]) == (message.id, "pending")
    message.refresh_from_db()
    assert (message.status, message.attempt_count) == ("delivered", 2)
    first, second = receiver.received()
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == message.id
    verify(endpoint["secret"], second)


def test_retry_to_a_disabled_endpoint_is_a_conflict(client, publish, receiver, endpoint):
    publish("post", "/v1/customers", {"name": "Initech"})
    message = WebhookMessage.objects.get()
    client.patch(f"/v1/webhooks/{endpoint['id']}", {"status": "disabled"})
    response = client.post(f"/v1/webhooks/{endpoint['id']}/deliveries/{message.id}/retry")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "endpoint_disabled"


def test_messages_of_other_endpoints_and_workspaces_are_404(
    client, other_client, publish, receiver, endpoint, make_endpoint
):
    second = make_endpoint(receiver.url("/second"))
    publish("post", "/v1/customers", {"name": "Initech"})
    message = WebhookMessage.objects.get(endpoint_id=endpoint["id"])
    assert client.post(f"/v1/webhooks/{second['id']}/deliveries/{message.id}/retry").status_code == 404
    assert client.get(f"/v1/webhooks/{second['id']}/deliveries/{message.id}").status_code == 404
    assert (
        other_client.post(f"/v1/webhooks/{endpoint['id']}/deliveries/{message.id}/retry").status_code == 404
    )
    assert client.get(f"/v1/webhooks/{endpoint['id']}/deliveries/msg_bogus").status_code == 404
    assert client.get(f"/v1/webhooks/{endpoint['id']}/deliveries/{message.id}").json()["id"] == message.id


def test_test_event_reaches_an_endpoint_whatever_it_subscribes_to(
    client, receiver, make_endpoint, django_capture_on_commit_callbacks
):
    endpoint = make_endpoint(receiver.url(), ["customer.deleted"])
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/v1/webhooks/{endpoint['id']}/test")
    assert response.status_code == 201
    assert (response.json()["type"], response.json()["endpoint"]) == ("webhook.test", endpoint["id"])
    assert WebhookMessage.objects.get(pk=response.json()["id"]).status == "delivered"
    event = verify(endpoint["secret"], receiver.received()[0])
    assert event["type"] == "webhook.test"
    assert event["data"]["object"]["id"] == endpoint["id"]
    assert "secret" not in event["data"]["object"]


def test_test_event_to_an_inactive_endpoint_is_a_conflict(client, receiver, make_endpoint):
    endpoint = make_endpoint(receiver.url(), active=False)
    response = client.post(f"/v1/webhooks/{endpoint['id']}/test")
    assert response.status_code == 409
    assert response.json()["error"]["message"] == (
        "The webhook endpoint is inactive; enable it (PATCH active=true, status=enabled) first."
    )


@pytest.mark.parametrize("suffix", ["", "/msg_00000000000000000000000000"])
def test_deliveries_of_another_workspaces_or_a_malformed_endpoint_are_404(
    client, other_client, endpoint, suffix
):
    for caller, endpoint_id in ((other_client, endpoint["id"]), (client, "we_bogus"), (client, "not-an-id")):
        response = caller.get(f"/v1/webhooks/{endpoint_id}/deliveries{suffix}")
        assert response.status_code == 404
        body = dict(response.json()["error"])
        assert body.pop("request_id").startswith("req_")
        assert body == {
            "type": "invalid_request_error",
            "code": "resource_missing",
            "message": f"No such webhook endpoint: '{endpoint_id}'.",
            "param": None,
        }
