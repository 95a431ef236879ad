"""SSRF protection: private, loopback, link-local, CGNAT, unique-local, multicast, reserved and
unspecified addresses (and IPv4-mapped forms) are refused at creation and on every attempt."""

from __future__ import annotations

import ipaddress

import pytest
from django.test import override_settings

from webhooks import client as webhook_client
from webhooks.models import WebhookAttempt, WebhookMessage
from webhooks.ssrf import address_refusal

pytestmark = pytest.mark.django_db

REFUSED = [
    ("127.0.0.1", "loopback"),
    ("10.1.2.3", "private (10.0.0.0/8)"),
    ("172.16.0.1", "private (172.16.0.0/12)"),
    ("192.168.1.1", "private (192.168.0.0/16)"),
    ("169.254.169.254", "link-local (169.254.0.0/16)"),
    ("100.64.0.1", "carrier-grade NAT (100.64.0.0/10)"),
    ("224.0.0.1", "multicast"),
    ("240.0.0.1", "reserved"),
    ("0.0.0.0", "unspecified"),
    ("::1", "loopback"),
    ("::", "unspecified"),
    ("fc00::1", "unique-local (fc00::/7)"),
    ("fd12:3456::1", "unique-local (fc00::/7)"),
    ("fe80::1", "link-local (fe80::/10)"),
    ("ff02::1", "multicast"),
    ("::ffff:127.0.0.1", "IPv4-embedding form of a loopback address"),
    ("::ffff:169.254.169.254", "IPv4-embedding form of a link-local (169.254.0.0/16) address"),
    ("64:ff9b::a00:1", "IPv4-embedding form of a private (10.0.0.0/8) address"),
    ("2002:a00:1::", "IPv4-embedding form of a private (10.0.0.0/8) address"),
]


@pytest.fixture(autouse=True)
def strict():
    with override_settings(PERLY_WEBHOOK_ALLOW_PRIVATE_URLS=False):
        yield


def literal_url(address: str) -> str:
    host = f"[{address}]" if ":" in address else address
    return f"https://{host}/hooks"


@pytest.mark.parametrize(("address", "reason"), REFUSED)
def test_ip_literal_is_refused_at_creation(client, address, reason):
    response = client.post("/v1/webhooks", {"url": literal_url(address), "events": ["*"]})
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["code"], error["param"], error["type"]) == (
        "url_not_allowed",
        "url",
        "invalid_request_error",
    )
    assert error["message"] == (
        f"Webhook URLs must point to public addresses: the address {ipaddress.ip_address(address)} ({reason})."
    )


@pytest.mark.parametrize(("address", "reason"), REFUSED)
def test_hostname_resolving_to_a_refused_address_is_refused(client, fake_dns, address, reason):
    fake_dns({"hooks.evil.example": address})
    response = client.post("/v1/webhooks", {"url": "https://hooks.evil.example/x", "events": ["*"]})
    assert response.status_code == 400
    assert response.json()["error"]["message"] == (
        "Webhook URLs must point to public addresses: "
        f"hooks.evil.example resolves to {ipaddress.ip_address(address)} ({reason})."
    )


def test_any_refused_address_among_several_refuses(client, fake_dns):
    fake_dns({"mixed.example": ["93.184.215.14", "10.0.0.7"]})
    response = client.post("/v1/webhooks", {"url": "https://mixed.example/x", "events": ["*"]})
    assert response.json()["error"]["code"] == "url_not_allowed"


def test_public_addresses_are_accepted(client, fake_dns):
    fake_dns({"hooks.example.com": ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"]})
    assert (
        client.post("/v1/webhooks", {"url": "https://hooks.example.com/x", "events": ["*"]}).status_code
        == 201
    )
    assert client.post("/v1/webhooks", {"url": "https://93.184.215.14/x", "events": ["*"]}).status_code == 201


def test_every_listed_range_is_refused_and_public_is_not():
    for address, reason in REFUSED:
        assert address_refusal(ipaddress.ip_address(address)) == reason
    for public in ("93.184.215.14", "8.8.8.8", "2606:4700::1111", "::ffff:8.8.8.8"):
        assert address_refusal(ipaddress.ip_address(public)) is None


def test_dns_changed_to_private_after_creation_fails_the_attempt(client, fake_dns, publish):
    answers = {"rebind.example": "93.184.215.14"}
    fake_dns({"rebind.example": lambda: answers["rebind.example"]})
    endpoint = client.post("/v1/webhooks", {"url": "https://rebind.example/x", "events": ["*"]}).json()
    answers["rebind.example"] = "169.254.169.254"
    publish("post", "/v1/customers", {"name": "Initech"})
    message = WebhookMessage.objects.get(endpoint_id=endpoint["id"])
    attempt = WebhookAttempt.objects.get(message=message)
    assert (message.status, attempt.outcome, attempt.status_code) == ("failed", "failed", None)
    assert attempt.error == (
        "url_not_allowed: Webhook URLs must point to public addresses: "
        "rebind.example resolves to 169.254.169.254 (link-local (169.254.0.0/16))."
    )


def test_flag_turned_off_refuses_existing_private_endpoints_at_delivery(client, receiver, publish):
    with override_settings(PERLY_WEBHOOK_ALLOW_PRIVATE_URLS=True):
        client.post("/v1/webhooks", {"url": receiver.url(), "events": ["*"]})
    publish("post", "/v1/customers", {"name": "Initech"})
    assert receiver.received() == []
    assert WebhookAttempt.objects.get().error == "url_not_allowed: Webhook URLs must use https."


def test_connection_goes_to_the_address_that_was_checked(client, receiver, fake_dns, publish):
    """One resolution per attempt, and the socket connects to its answer: a second lookup (what
    a rebinding DNS server would exploit) would have pointed at an unroutable address."""
    answers = iter(["127.0.0.1", "127.0.0.1"])
    calls = fake_dns({"pinned.example": lambda: next(answers, "10.255.255.1")})
    with override_settings(PERLY_WEBHOOK_ALLOW_PRIVATE_URLS=True):
        endpoint = client.post(
            "/v1/webhooks", {"url": f"http://pinned.example:{receiver.port}/hook", "events": ["*"]}
        ).json()
        publish("post", "/v1/customers", {"name": "Initech"})
    (request,) = receiver.received()
    assert request.headers["Host"] == f"pinned.example:{receiver.port}"
    assert calls == ["pinned.example", "pinned.example"]  # creation, then the one attempt
    assert WebhookMessage.objects.get(endpoint_id=endpoint["id"]).status == "delivered"


def test_a_kept_alive_connection_is_reused_only_for_the_address_checked_on_each_attempt(receiver, fake_dns):
    """Connections are pooled per checked address: while the name keeps resolving to it, attempts
    share one keep-alive connection; once it resolves elsewhere, the next attempt connects to the
    new answer (here a closed port on 127.0.0.2) instead of riding the old connection."""
    answers = {"pooled.example": "127.0.0.1"}
    calls = fake_dns({"pooled.example": lambda: answers["pooled.example"]})
    url = f"http://pooled.example:{receiver.port}/hook"
    with override_settings(PERLY_WEBHOOK_ALLOW_PRIVATE_URLS=True):
        first = webhook_client.post(url, b"{}", {"Content-Type": "application/json"})
        second = webhook_client.post(url, b"{}", {"Content-Type": "application/json"})
        answers["pooled.example"] = "127.0.0.2"
        third = webhook_client.post(url, b"{}", {"Content-Type": "application/json"})
    assert (first.status_code, second.status_code) == (200, 200)
    peers = [request.peer for request in receiver.received()]
    assert len(peers) == 2 and peers[0] == peers[1]  # the second attempt reused the connection
    assert (third.status_code, third.kind) == (None, "connection_error")
    assert len(receiver.received()) == 2
    assert calls == ["pooled.example"] * 3  # resolved and checked on every attempt


def _hostile_forms():
    from tests.support.hostile_urls import hostile_urls

    return [url.replace("18951", "{port}") for url, _kind in hostile_urls("hooks.example.com", 18951)]


@pytest.fixture
def trap():
    from tests.support.hostile_urls import Trap

    with Trap() as live:
        yield live


def _public_and_evil_dns(fake_dns):
    # The trusted-looking name is public; the attacker's names point at the loopback (the trap).
    fake_dns(
        {
            "hooks.example.com": "93.184.215.14",
            "hooks.example.com.evil.example": "127.0.0.1",
            "evil.example": "127.0.0.1",
            "localhost": "127.0.0.1",
        }
    )


@pytest.mark.parametrize("form", _hostile_forms())
def test_hostile_url_forms_are_refused_at_creation(client, fake_dns, trap, form):
    """The same gate as the providers' URLs (perly.outbound.checked_url): what the check read is
    what the client connects to; the table is shared with tests/integrations/test_outbound_ssrf.py."""
    _public_and_evil_dns(fake_dns)
    response = client.post(
        "/v1/webhooks", {"url": form.format(port=trap.port), "events": ["*"]}, format="json"
    )
    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] in ("parameter_invalid", "url_not_allowed")
    assert response.json()["error"]["param"] == "url"
    assert not trap.connected()


@pytest.mark.parametrize("form", _hostile_forms())
def test_hostile_url_forms_stored_before_the_check_fail_the_attempt_unsent(fake_dns, trap, form):
    _public_and_evil_dns(fake_dns)
    result = webhook_client.post(form.format(port=trap.port), b"{}", {"Content-Type": "application/json"})
    assert (result.kind, result.status_code) == ("url_not_allowed", None)
    assert not trap.connected()


def test_the_stored_url_is_the_rebuilt_one(client, fake_dns):
    fake_dns({"hooks.example.com": "93.184.215.14"})
    response = client.post("/v1/webhooks", {"url": "HTTPS://Hooks.Example.com/p?q=1#frag", "events": ["*"]})
    assert response.status_code == 201
    assert response.json()["url"] == "https://hooks.example.com/p?q=1"
