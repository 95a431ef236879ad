"""Webhook fixtures: a live receiver on 127.0.0.1, the private-URL flag, endpoints, fake DNS."""

from __future__ import annotations

import socket

import pytest
from django.test import override_settings

from tests.webhooks.receiver import Receiver


@pytest.fixture(autouse=True)
def allow_private_urls():
    """The receiver lives on 127.0.0.1, so the flag is on; SSRF tests turn it off again."""
    with override_settings(PERLY_WEBHOOK_ALLOW_PRIVATE_URLS=True):
        yield


@pytest.fixture
def receiver():
    with Receiver() as live:
        yield live


@pytest.fixture
def make_endpoint(client):
    """make_endpoint(url, events=["*"], api=client, **fields) -> the create response body."""

    def make(url: str, events: list[str] | None = None, api=None, **fields) -> dict:
        response = (api or client).post("/v1/webhooks", {"url": url, "events": events or ["*"], **fields})
        assert response.status_code == 201, response.content
        return response.json()

    return make


@pytest.fixture
def endpoint(make_endpoint, receiver):
    return make_endpoint(receiver.url())


@pytest.fixture
def fake_dns(monkeypatch):
    """fake_dns({"host": "10.0.0.1"}) or {"host": ["1.2.3.4", "10.0.0.1"]} or a callable per
    lookup: getaddrinfo answers for these names (what a hostile DNS server would say)."""
    real = socket.getaddrinfo
    table: dict = {}
    calls: list[str] = []

    def getaddrinfo(host, port, *args, **kwargs):
        if host in table:
            calls.append(host)
            answer = table[host]
            answer = answer() if callable(answer) else answer
            addresses = [answer] if isinstance(answer, str) else answer
            return [
                (
                    socket.AF_INET6 if ":" in address else socket.AF_INET,
                    socket.SOCK_STREAM,
                    6,
                    "",
                    (address, port or 0, 0, 0) if ":" in address else (address, port or 0),
                )
                for address in addresses
            ]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)

    def configure(entries: dict) -> list[str]:
        table.update(entries)
        return calls

    return configure


@pytest.fixture
def publish(client, django_capture_on_commit_callbacks):
    """Run an API call and its on_commit hooks (eager tasks: the deliveries happen right here)."""

    def run(method: str, path: str, data: dict | None = None):
        with django_capture_on_commit_callbacks(execute=True):
            return getattr(client, method)(path, data)

    return run


@pytest.fixture
def attempt_again(django_capture_on_commit_callbacks):
    """Make a pending message due now (time travel over its retry delay) and attempt it."""
    from django.utils import timezone

    from webhooks.delivery import webhook_message_deliver
    from webhooks.models import WebhookMessage

    def run(message_id: str) -> str:
        WebhookMessage.objects.filter(pk=message_id).update(next_attempt_at=timezone.now())
        with django_capture_on_commit_callbacks(execute=True):
            return webhook_message_deliver(message_id=message_id)

    return run


def verify(secret: str, request) -> dict:
    """Verify a received request exactly as a customer would, with the standardwebhooks package."""
    import standardwebhooks

    return standardwebhooks.Webhook(secret).verify(request.body, request.headers)
