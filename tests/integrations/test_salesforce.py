"""The Salesforce connector (thin requests client) against the fake token + query endpoints."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.test import override_settings

from customers.models import Customer
from integrations.providers.salesforce import checked_instance_url, login_url_for
from perly.outbound import OutboundUrlError
from tests.integrations.conftest import SALESFORCE_CLIENT, connect
from tests.integrations.helpers import cursor, records, signals_of, sync_now

pytestmark = pytest.mark.django_db(transaction=True)


def _connect(client, **config):
    response = connect(client, "salesforce", dict(SALESFORCE_CLIENT), **config)
    assert response.status_code == 201, response.content
    return response.json()


def _seed(fake, count: int) -> list[dict]:
    return [
        fake.add_account(name=f"Account {i}", website=f"https://www.acct{i}.example.com")
        for i in range(count)
    ]


def test_credentials_are_checked_with_the_token_endpoint(client, fake_salesforce):
    response = connect(client, "salesforce", {**SALESFORCE_CLIENT, "client_secret": "nope-nope-nope-nope"})

    assert response.status_code == 400
    assert response.json()["error"]["message"] == (
        "Salesforce refused these credentials: invalid client credentials"
    )
    body = _connect(client)
    assert body["credentials"] == {"client_id": "…0000", "client_secret": "…cdef"}
    token_call = fake_salesforce.requests_to("/services/oauth2/token")[0]
    assert b"grant_type=client_credentials" in token_call.body


def test_full_sync_follows_next_records_url(client, fake_salesforce):
    accounts = _seed(fake_salesforce, 5)
    fake_salesforce.add_case(account_id=accounts[0]["Id"], priority="High")

    integration = _connect(client)

    run = integration["last_sync"]
    assert run["status"] == "succeeded"
    assert run["stats"]["records_read"] == 6
    assert len(records(integration["id"], "accounts")) == 5
    queries = fake_salesforce.requests_to("/services/data/v60.0/query")
    first = queries[1].query["q"][0]  # [0] is the credentials check
    assert first.startswith("SELECT Id, Name, Website, LastActivityDate, SystemModstamp FROM Account")
    assert "WHERE" not in first
    assert [q.path.count("/") for q in queries[1:4]] == [4, 5, 5]  # query, then two locators
    assert queries[1].headers["authorization"].startswith("Bearer 00DFAKE!")


def test_incremental_sync_filters_on_system_modstamp(client, fake_salesforce):
    accounts = _seed(fake_salesforce, 3)
    integration = _connect(client)
    since = cursor(integration["id"], "accounts")["since"]
    fake_salesforce.touch("Account", accounts[0]["Id"], Name="Renamed")
    fake_salesforce.clear_log()

    run = sync_now(client, integration["id"])

    soql = fake_salesforce.requests_to("/services/data/v60.0/query")[0].query["q"][0]
    assert f"WHERE SystemModstamp >= {since} ORDER BY SystemModstamp ASC, Id ASC" in soql
    assert run["stats"]["records_read"] == 2  # the boundary row again, and the changed one
    names = {r.provider_id: r.data["name"] for r in records(integration["id"], "accounts")}
    assert names[accounts[0]["Id"]] == "Renamed"
    assert len(names) == 3


def test_a_429_mid_paging_is_retried(client, fake_salesforce):
    _seed(fake_salesforce, 5)
    fake_salesforce.fail(429, "/services/data/v60.0/query/", retry_after=0)

    integration = _connect(client)

    assert integration["last_sync"]["status"] == "succeeded"
    assert integration["last_sync"]["stats"]["rate_limited_retries"] == 1
    assert len(records(integration["id"], "accounts")) == 5


def test_an_expired_session_gets_one_new_token_then_a_revoked_app_needs_reauth(client, fake_salesforce):
    _seed(fake_salesforce, 1)
    integration = _connect(client)
    fake_salesforce.expire_tokens()

    assert sync_now(client, integration["id"])["status"] == "succeeded"  # re-authenticated once

    fake_salesforce.expire_tokens()
    fake_salesforce.clients.clear()  # the connected app was revoked
    run = sync_now(client, integration["id"])
    assert run["status"] == "failed"
    assert run["error"] == "Salesforce answered 400: invalid client credentials"
    assert client.get(f"/v1/integrations/{integration['id']}").json()["status"] == "needs_reauth"


def test_a_401_on_query_after_a_fresh_token_needs_reauth(client, fake_salesforce):
    integration = _connect(client)
    fake_salesforce.fail(401, "/services/data/", times=10)

    run = sync_now(client, integration["id"])

    assert run["status"] == "failed"
    assert run["error"] == "Salesforce answered 401: INVALID_SESSION_ID: Session expired or invalid"
    assert client.get(f"/v1/integrations/{integration['id']}").json()["status"] == "needs_reauth"


def test_a_crash_mid_stream_resumes_from_the_last_stamp_without_duplicates(client, fake_salesforce):
    accounts = _seed(fake_salesforce, 5)
    fake_salesforce.fail(500, "/services/data/v60.0/query/", skip=1, times=6)  # the 3rd batch fails

    integration = _connect(client)

    assert integration["last_sync"]["status"] == "partial"
    assert len(records(integration["id"], "accounts")) == 4
    fake_salesforce.clear_log()
    assert sync_now(client, integration["id"])["status"] == "succeeded"
    soql = fake_salesforce.requests_to("/services/data/v60.0/query")[0].query["q"][0]
    assert f"SystemModstamp >= {accounts[3]['SystemModstamp'].replace('+0000', 'Z')}" in soql
    assert len(records(integration["id"], "accounts")) == 5
    assert Customer.objects.count() == 5


def test_accounts_match_by_website_domain_then_name(client, fake_salesforce):
    by_domain = client.post("/v1/customers", {"name": "Initech Corp", "domain": "initech.com"}).json()
    by_name = client.post("/v1/customers", {"name": "Globex"}).json()
    fake_salesforce.add_account(name="Initech", website="http://www.initech.com/about")
    fake_salesforce.add_account(name="GLOBEX", website=None)

    integration = _connect(client)

    links = {r.data["name"]: r.customer_id for r in records(integration["id"], "accounts")}
    assert links == {"Initech": by_domain["id"], "GLOBEX": by_name["id"]}


def test_support_and_engagement_signals(client, fake_salesforce):
    today = date.today()
    calm = fake_salesforce.add_account(
        name="Calm", website="calm.io", last_activity=str(today - timedelta(days=3))
    )
    fake_salesforce.add_case(account_id=calm["Id"], closed=True, priority="High")
    busy = fake_salesforce.add_account(
        name="Busy", website="busy.io", last_activity=str(today - timedelta(days=45))
    )
    for priority in ("High", "High", "Medium", "Low"):
        fake_salesforce.add_case(account_id=busy["Id"], priority=priority)

    integration = _connect(client)

    ids = {r.data["name"]: r.customer_id for r in records(integration["id"], "accounts")}
    calm_signals, busy_signals = signals_of(client, ids["Calm"]), signals_of(client, ids["Busy"])
    assert (
        calm_signals["support.open_cases"]["value"] == 0
        and calm_signals["support.open_cases"]["score"] == 100
    )
    assert busy_signals["support.open_cases"]["value"] == 4
    assert busy_signals["support.high_priority_open_cases"]["value"] == 2
    assert busy_signals["support.high_priority_open_cases"]["score"] == 20
    assert busy_signals["engagement.crm_last_activity_days"]["value"] == 45
    calm_health = client.get(f"/v1/customers/{ids['Calm']}/health").json()
    busy_health = client.get(f"/v1/customers/{ids['Busy']}/health").json()
    assert busy_health["score"] < calm_health["score"]


@pytest.mark.django_db  # no database work: skip the transactional flush
def test_instance_url_must_be_salesforce_unless_the_urls_were_overridden():
    with override_settings(SALESFORCE_LOGIN_URL="https://login.salesforce.com"):
        assert checked_instance_url("https://acme.my.salesforce.com").url == "https://acme.my.salesforce.com"
        assert checked_instance_url("https://na1.force.com/").url == "https://na1.force.com"
        for bad in (
            "http://acme.my.salesforce.com",
            "https://salesforce.com.evil.io",
            "https://evilsalesforce.com",
            "http://127.0.0.1:9",
        ):
            with pytest.raises(OutboundUrlError):
                checked_instance_url(bad)
        assert (
            login_url_for({"login_url": "https://acme.my.salesforce.com"}).url
            == "https://acme.my.salesforce.com"
        )
    with override_settings(SALESFORCE_LOGIN_URL="http://127.0.0.1:9"):
        assert login_url_for({"login_url": "https://acme.my.salesforce.com"}).url == "http://127.0.0.1:9"
        assert checked_instance_url("http://127.0.0.1:9").url == "http://127.0.0.1:9"
        with pytest.raises(OutboundUrlError):
            checked_instance_url("http://127.0.0.1:10")  # not the overriding origin
