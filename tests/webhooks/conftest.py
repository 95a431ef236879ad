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
