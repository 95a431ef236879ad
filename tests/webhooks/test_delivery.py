"""Delivery to a live receiver: signatures, retries, 410, redirects, timeouts, attempt records."""

from __future__ import annotations

import socket
from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone

from tests.webhooks.conftest import verify
from tests.webhooks.receiver import Reply
from webhooks import client as webhook_client
from webhooks.delivery import RETRY_SCHEDULE_SECONDS, retry_delay
from webhooks.models import WebhookAttempt, WebhookEndpoint, WebhookMessage

pytestmark = pytest.mark.django_db


def only_message() -> WebhookMessage:
    (message,) = WebhookMessage.objects.all()
    return message


def attempts(message: WebhookMessage) -> list[tuple]:
    return list(
        WebhookAttempt.objects.filter(message=message)
        .order_by("attempt_number")
        .values_list("attempt_number", "outcome", "status_code", "error")
    )


def test_delivery_verifies_with_standardwebhooks(publish, receiver, endpoint):
    customer = publish("post", "/v1/customers", {"name": "Initech", "email": "ops@initech.com"}).json()
    (request,) = receiver.received("/hook")
    event = verify(endpoint["secret"], request)
    assert event == {
        "id": request.headers["webhook-id"],
        "object": "event",
        "type": "customer.created",
        "created_at": event["created_at"],
        "data": {"object": customer, "previous_attributes": None},
    }
    assert event["id"].startswith("msg_")
    assert request.headers["User-Agent"] == "Perly-Webhooks/1"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["webhook-signature"].startswith("v1,")
    # The bytes sent are the bytes stored (and signed) at publish time.
    assert request.body == only_message().payload.encode()
    assert only_message().status == "delivered"


def test_update_carries_previous_attributes(publish, receiver, endpoint, customer):
    publish("patch", f"/v1/customers/{customer['id']}", {"plan": "enterprise"})
    event = verify(endpoint["secret"], receiver.received()[-1])
    assert event["type"] == "customer.updated"
    assert event["data"]["object"]["plan"] == "enterprise"
    assert event["data"]["previous_attributes"] == {"plan": None}


def test_retry_after_500_keeps_the_same_webhook_id(publish, receiver, endpoint, attempt_again):
    receiver.script("/hook", Reply(500, b"boom"), Reply(200))
    publish("post", "/v1/customers", {"name": "Initech"})
    message = only_message()
    assert message.status == "pending"
    delay = (message.next_attempt_at - timezone.now()).total_seconds()
    assert 3.5 <= delay <= 5.5

    assert attempt_again(message.id).startswith("delivered")
    first, second = receiver.received("/hook")
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == message.id
    assert first.body == second.body
    assert verify(endpoint["secret"], first) == verify(endpoint["secret"], second)
    assert attempts(message) == [(1, "retrying", 500, "HTTP 500"), (2, "delivered", 200, None)]


def test_410_disables_the_endpoint(publish, receiver, endpoint, client):
    receiver.script("/hook", Reply(410, b"gone"))
    publish("post", "/v1/customers", {"name": "Initech"})
    assert only_message().status == "failed"
    body = client.get(f"/v1/webhooks/{endpoint['id']}").json()
    assert (body["status"], body["disabled_reason"]) == ("disabled", "The endpoint answered 410 Gone.")
    publish("post", "/v1/customers", {"name": "Globex"})
    assert WebhookMessage.objects.count() == 1
    assert len(receiver.received()) == 1


def test_redirects_are_not_followed(publish, receiver, endpoint):
    receiver.script("/hook", Reply(302, b"", headers={"Location": "/elsewhere"}))
    publish("post", "/v1/customers", {"name": "Initech"})
    assert receiver.received("/elsewhere") == []
    message = only_message()
    assert message.status == "failed"
    assert attempts(message) == [(1, "failed", 302, "redirect not followed (HTTP 302 to /elsewhere)")]


def test_the_timeout_is_applied(publish, receiver, endpoint):
    assert webhook_client.TIMEOUT_SECONDS == 15
    receiver.script("/hook", Reply(200, delay=3))
    with override_settings(PERLY_WEBHOOK_TIMEOUT_SECONDS=0.5):
        publish("post", "/v1/customers", {"name": "Initech"})
    message = only_message()
    (attempt,) = message.attempts.all()
    assert attempt.error == "timeout: no response within 0.5 s"
    assert attempt.status_code is None
    assert 400 <= attempt.duration_ms < 2500
    assert (message.status, attempt.outcome) == ("pending", "retrying")


def test_429_retry_after_is_honoured(publish, receiver, endpoint):
    receiver.script("/hook", Reply(429, headers={"Retry-After": "120"}))
    publish("post", "/v1/customers", {"name": "Initech"})
    message = only_message()
    assert message.status == "pending"
    assert message.next_attempt_at >= timezone.now() + timedelta(seconds=115)
    # Beyond the countdown threshold: the retry waits in the database for the sweeper.
    assert message.enqueued_at is None


def test_connection_refused_is_retried(publish, make_endpoint):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    make_endpoint(f"http://127.0.0.1:{port}/hook")
    publish("post", "/v1/customers", {"name": "Initech"})
    message = only_message()
    (attempt,) = message.attempts.all()
    assert (message.status, attempt.outcome, attempt.status_code) == ("pending", "retrying", None)
    assert attempt.error.startswith("connection_error: ")


def test_other_4xx_fails_without_retry(publish, receiver, endpoint):
    receiver.script("/hook", Reply(400, b'{"error": "bad signature"}'))
    publish("post", "/v1/customers", {"name": "Initech"})
    message = only_message()
    assert message.status == "failed"
    (attempt,) = message.attempts.all()
    assert (attempt.status_code, attempt.response_body, attempt.error) == (
        400,
        '{"error": "bad signature"}',
        "HTTP 400",
    )


def test_retry_schedule_is_the_documented_one():
    assert RETRY_SCHEDULE_SECONDS == (5, 300, 1800, 7200, 18000, 36000, 36000)
    for step, base in enumerate(RETRY_SCHEDULE_SECONDS):
        delays = [retry_delay(step) for _ in range(200)]
        assert all(base * 0.9 <= d <= base * 1.1 for d in delays)
        assert max(delays) - min(delays) > base * 0.05  # the jitter really spreads retries
    assert retry_delay(len(RETRY_SCHEDULE_SECONDS)) is None


def test_message_fails_after_the_last_scheduled_retry(publish, receiver, endpoint, attempt_again):
    receiver.script("/hook", Reply(503))
    publish("post", "/v1/customers", {"name": "Initech"})
    message = only_message()
    for _ in RETRY_SCHEDULE_SECONDS:
        attempt_again(message.id)
    message.refresh_from_db()
    assert (message.status, message.attempt_count) == ("failed", 8)
    outcomes = [a[1] for a in attempts(message)]
    assert outcomes == ["retrying"] * 7 + ["failed"]
    assert len(receiver.received("/hook")) == 8


def test_response_body_is_kept_up_to_4_kb(publish, receiver, endpoint):
    receiver.script("/hook", Reply(500, b"x" * 10_000))
    publish("post", "/v1/customers", {"name": "Initech"})
    (attempt,) = only_message().attempts.all()
    assert attempt.response_body == "x" * 4096


def test_endpoint_failing_for_five_days_is_disabled(publish, receiver, endpoint, attempt_again):
    receiver.script("/hook", Reply(500))
    publish("post", "/v1/customers", {"name": "Initech"})
    endpoint_row = WebhookEndpoint.objects.get(pk=endpoint["id"])
    assert endpoint_row.failing_since is not None
    WebhookEndpoint.objects.filter(pk=endpoint["id"]).update(
        failing_since=timezone.now() - timedelta(days=5, minutes=1)
    )
    attempt_again(only_message().id)
    endpoint_row.refresh_from_db()
    assert endpoint_row.status == "disabled"
    assert endpoint_row.disabled_reason == "Every delivery attempt has failed for 5 days."
    assert only_message().status == "failed"


def test_a_success_ends_the_failing_streak(publish, receiver, endpoint, attempt_again):
    receiver.script("/hook", Reply(500), Reply(200))
    publish("post", "/v1/customers", {"name": "Initech"})
    attempt_again(only_message().id)
    assert WebhookEndpoint.objects.get(pk=endpoint["id"]).failing_since is None
