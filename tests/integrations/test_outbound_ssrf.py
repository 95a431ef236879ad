"""SSRF through provider URLs: the Salesforce login_url (API input and stored credentials), the
token response's instance_url, and the settings' base URLs for Stripe and HubSpot. Every hostile
form is refused before a connection is made, and a network failure says the same thing whether
something listens on the port or not."""

from __future__ import annotations

import socket
import threading

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from integrations.models import Integration
from integrations.providers import connector_for
from integrations.providers.base import CredentialsInvalid, ProviderError
from integrations.providers.salesforce import DEFAULT_LOGIN_URL, SalesforceConnector
from tests.integrations.conftest import SALESFORCE_CLIENT, connect
from tests.support.hostile_urls import Trap, hostile_urls, syntax_forms

PORT = 18951  # the tables are built once; each test points them at its own trap's port


def _forms(trusted: str):
    return [url.replace(str(PORT), "{port}") for url, _kind in hostile_urls(trusted, PORT)]


def _syntax(trusted: str):
    return [url.replace(str(PORT), "{port}") for url in syntax_forms(trusted, PORT)]


@pytest.fixture
def trap():
    with Trap() as live:
        yield live


@pytest.mark.django_db
@pytest.mark.parametrize("form", _forms("login.salesforce.com"))
def test_hostile_login_url_is_refused_at_connect_without_a_connection(client, trap, form):
    login_url = form.format(port=trap.port)
    with override_settings(SALESFORCE_LOGIN_URL=DEFAULT_LOGIN_URL):  # the credential is honoured
        response = connect(client, "salesforce", {**SALESFORCE_CLIENT, "login_url": login_url})
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert (error["param"], error["code"]) == ("credentials[login_url]", "parameter_invalid")
    assert not trap.connected()
    assert Integration.objects.count() == 0


@pytest.mark.django_db
@pytest.mark.parametrize("form", _forms("login.salesforce.com"))
def test_hostile_stored_login_url_never_reaches_the_network(trap, form):
    # Credentials stored before the check was tightened are checked again by the connector.
    credentials = {**SALESFORCE_CLIENT, "login_url": form.format(port=trap.port)}
    with override_settings(SALESFORCE_LOGIN_URL=DEFAULT_LOGIN_URL):
        connector = SalesforceConnector(credentials)
        with pytest.raises(CredentialsInvalid, match="login_url"):
            connector.check()
    assert not trap.connected()


@pytest.mark.django_db
@pytest.mark.parametrize("form", _forms("na1.my.salesforce.com"))
def test_hostile_instance_url_from_the_token_response_gets_no_query(trap, fake_salesforce, form):
    fake_salesforce.instance_url_override = form.format(port=trap.port)
    connector = SalesforceConnector(dict(SALESFORCE_CLIENT))
    with pytest.raises(CredentialsInvalid, match="instance_url"):
        connector.check()
    assert not trap.connected()  # the bearer token went nowhere
    assert [r.path for r in fake_salesforce.requests] == ["/services/oauth2/token"]


@pytest.mark.django_db
def test_the_overriding_origin_itself_is_an_accepted_instance_url(fake_salesforce):
    fake_salesforce.instance_url_override = fake_salesforce.url + "/"
    SalesforceConnector(dict(SALESFORCE_CLIENT)).check()
    assert [r.path for r in fake_salesforce.requests][-1].endswith("/query")


@pytest.mark.django_db
def test_a_next_records_url_other_than_a_query_locator_is_refused(fake_salesforce):
    connector = SalesforceConnector(dict(SALESFORCE_CLIENT))
    connector.check()
    for hostile in (
        "/services/data/v60.0/query/../../../id",
        "/services/data/v60.0/query/01g@127.0.0.1",
        "//127.0.0.1/services/data/v60.0/query/01g",
        "https://127.0.0.1/services/data/v60.0/query/01g",
        "/services/data/v60.0/query/01g?x=1",
        "/services/data/v60.0/query/01g\\x",
    ):
        with pytest.raises(ProviderError, match="unexpected nextRecordsUrl"):
            connector._get(hostile)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("provider", "setting", "trusted", "credentials"),
    [
        ("stripe", "STRIPE_API_BASE", "api.stripe.com", {"api_key": "sk_test_x"}),
        ("hubspot", "HUBSPOT_API_BASE", "api.hubapi.com", {"access_token": "pat-x"}),
    ],
)
def test_hostile_provider_base_urls_from_settings_are_refused_before_any_request(
    trap, provider, setting, trusted, credentials
):
    forms = _syntax(trusted)
    assert len(forms) >= 30
    for form in forms:
        with (
            override_settings(**{setting: form.format(port=trap.port)}),
            pytest.raises(ImproperlyConfigured, match=setting),
        ):
            connector_for(provider, credentials)
    assert not trap.connected()


def test_settings_refuse_a_hostile_base_url_at_startup():
    import subprocess
    import sys

    for name in ("STRIPE_API_BASE", "HUBSPOT_API_BASE", "SALESFORCE_LOGIN_URL"):
        env = {**__import__("os").environ, name: "https://127.0.0.1:18951\\@api.example.com"}
        result = subprocess.run(
            [sys.executable, "-c", "import django; django.setup()"],
            env={**env, "DJANGO_SETTINGS_MODULE": "tests.settings"},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode != 0
        assert f"ImproperlyConfigured: {name} must not contain backslashes." in result.stderr


class _NotTls:
    """Something listening that does not speak TLS: a TLS client fails with SSLError here,
    and with a connection error on a closed port; the two must read the same."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")

    def close(self) -> None:
        self.sock.close()


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.django_db
def test_an_open_port_and_a_closed_port_fail_with_the_same_words(client):
    listening = _NotTls()
    try:
        reasons, bodies = [], []
        for port in (listening.port, _closed_port()):
            with override_settings(SALESFORCE_LOGIN_URL=f"https://127.0.0.1:{port}"):
                connector = SalesforceConnector(dict(SALESFORCE_CLIENT))
                connector.caller.policy.max_retries = 0
                with pytest.raises(ProviderError) as failed:
                    connector.check()
                reasons.append(failed.value.reason)
                response = connect(client, "salesforce", dict(SALESFORCE_CLIENT))
                error = response.json()["error"]
                bodies.append((response.status_code, error["code"], error["message"]))
    finally:
        listening.close()
    assert reasons[0] == reasons[1] == "Salesforce could not be reached. (gave up after 1 attempts)"
    assert bodies[0] == bodies[1]
    assert bodies[0][0] == 502
