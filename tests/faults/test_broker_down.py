"""The broker (Redis) goes down while customers change: the API keeps answering, the outbox keeps
the messages, and they are delivered once the broker is back."""

from __future__ import annotations

import pytest

from tests.faults.conftest import server_env, via
from tests.support.worker import wait_for
from tests.webhooks.conftest import verify
from tests.webhooks.receiver import Receiver
from webhooks.models import WebhookMessage

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(180), pytest.mark.worker]


def test_changes_made_while_the_broker_is_down_are_delivered_after_it_returns(
    start_server, start_worker, redis_proxy, tenant, settings
):
    _, key = tenant
    redis_url = via(settings.REDIS_URL, redis_proxy.port)
    server = start_server(server_env(redis_port=redis_proxy.port))
    start_worker(beat=True, REDIS_URL=redis_url, CELERY_BROKER_URL=redis_url)  # sweeper every 10 s
    with Receiver() as receiver:
        endpoint = server.request("POST", "/v1/webhooks", key, json={"url": receiver.url(), "events": ["*"]})
        assert endpoint.status_code == 201, endpoint.text
        secret = endpoint.json()["secret"]
        first = server.request("POST", "/v1/customers", key, json={"name": "Before"}).json()["id"]
        wait_for(lambda: receiver.count() == 1, timeout=30, message="the delivery before the outage")

        redis_proxy.down()
        second = server.request("POST", "/v1/customers", key, json={"name": "During"})
        assert second.status_code == 201, second.text
        second = second.json()["id"]
        assert server.request("PATCH", f"/v1/customers/{first}", key, json={"plan": "pro"}).status_code == 200
        assert server.request("DELETE", f"/v1/customers/{second}", key).status_code == 200
        pending = WebhookMessage.objects.filter(status="pending")
        assert pending.count() == 3
        # The failed enqueue left them for the sweeper (not "queued" by a task that never was).
        assert not pending.filter(enqueued_at__isnull=False).exists()
        assert receiver.count() == 1

        redis_proxy.up()
        wait_for(
            lambda: not WebhookMessage.objects.filter(status="pending").exists(),
            timeout=90,
            message="every message written during the outage to be delivered",
        )
        received = [verify(secret, request) for request in receiver.received()]

    assert set(WebhookMessage.objects.values_list("status", flat=True)) == {"delivered"}
    by_type = {(p["type"], p["data"]["object"]["id"]) for p in received}
    assert by_type == {
        ("customer.created", first),
        ("customer.created", second),
        ("customer.updated", first),
        ("customer.deleted", second),
    }
    assert {r.headers["webhook-id"] for r in receiver.received()} == set(
        WebhookMessage.objects.values_list("id", flat=True)
    )
