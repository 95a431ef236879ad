"""The HubSpot connector (hubspot-api-client) against the fake HubSpot CRM v3 API."""

from __future__ import annotations

import time

import pytest

from customers.models import Customer
from tests.integrations.conftest import HUBSPOT_TOKEN, connect
from tests.integrations.helpers import cursor, records, signals_of, sync_now

pytestmark = pytest.mark.django_db(transaction=True)
DAY_MS = 86400_000


def _connect(client, **config):
    response = connect(client, "hubspot", {"access_token": HUBSPOT_TOKEN}, **config)
    assert response.status_code == 201, response.content
    return response.json()


def _seed(fake, count: int) -> list[dict]:
    return [fake.add_company(name=f"Company {i}", domain=f"co{i}.example.com") for i in range(count)]


def test_credentials_are_checked_against_hubspot(client, fake_hubspot):
    response = connect(client, "hubspot", {"access_token": "pat-na1-wrong"})

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "integration_credentials_invalid"
    assert response.json()["error"]["message"] == (
        "HubSpot refused these credentials: Authentication credentials not found. "
        "This API supports OAuth 2.0 authentication."
    )
    assert _connect(client)["credentials"] == {"access_token": "…5555"}


def test_full_sync_pages_companies_and_deals(client, fake_hubspot):
    companies = _seed(fake_hubspot, 130)
    fake_hubspot.add_deal(company_id=companies[0]["id"], amount=12000)

    integration = _connect(client)

    run = integration["last_sync"]
    assert run["status"] == "succeeded"
    assert run["stats"]["records_read"] == 131
    assert run["stats"]["customers_created"] == 130
    listed = fake_hubspot.requests_to("/crm/v3/objects/companies", "GET")
    assert [r.query.get("after") for r in listed] == [None, None, [companies[100]["id"]]]
    assert set(listed[1].query["properties"]) >= {"name", "domain", "hs_lastmodifieddate"}
    deals = records(integration["id"], "deals")
    assert deals[0].parent_id == companies[0]["id"]
    assert fake_hubspot.requests_to("/crm/v3/objects/deals")[0].query["associations"] == ["companies"]


def test_incremental_sync_searches_on_hs_lastmodifieddate(client, fake_hubspot):
    companies = _seed(fake_hubspot, 3)
    integration = _connect(client)
    since = cursor(integration["id"], "companies")["since_ms"]
    time.sleep(0.002)  # HubSpot's clock is in milliseconds: make the change strictly later
    fake_hubspot.touch_company(companies[1]["id"], name="Company One Renamed")
    fake_hubspot.clear_log()

    run = sync_now(client, integration["id"])

    assert run["status"] == "succeeded"
    search = fake_hubspot.requests_to("/crm/v3/objects/companies/search")[0].json()
    assert search["filterGroups"] == [
        {"filters": [{"propertyName": "hs_lastmodifieddate", "operator": "GTE", "value": str(since)}]}
    ]
    assert search["sorts"] == [{"propertyName": "hs_lastmodifieddate", "direction": "ASCENDING"}]
    assert fake_hubspot.requests_to("/crm/v3/objects/companies", "GET") == []
    names = {r.provider_id: r.data["name"] for r in records(integration["id"], "companies")}
    assert names[companies[1]["id"]] == "Company One Renamed"


def test_a_429_mid_paging_is_retried(client, fake_hubspot):
    _seed(fake_hubspot, 150)
    fake_hubspot.fail(429, "/crm/v3/objects/companies", skip=2, retry_after=1)

    integration = _connect(client)

    assert integration["last_sync"]["status"] == "succeeded"
    assert integration["last_sync"]["stats"]["rate_limited_retries"] == 1
    assert len(records(integration["id"], "companies")) == 150


def test_a_401_sets_needs_reauth(client, fake_hubspot):
    integration = _connect(client)
    fake_hubspot.tokens.clear()

    run = sync_now(client, integration["id"])

    assert run["status"] == "failed"
    assert run["error"].startswith("HubSpot answered 401")
    assert client.get(f"/v1/integrations/{integration['id']}").json()["status"] == "needs_reauth"


def test_a_crash_mid_stream_resumes_without_duplicates(client, fake_hubspot):
    companies = _seed(fake_hubspot, 150)
    fake_hubspot.fail(500, "/crm/v3/objects/companies", skip=2, times=6)

    integration = _connect(client)

    assert integration["last_sync"]["status"] == "partial"
    assert cursor(integration["id"], "companies")["after"] == companies[100]["id"]
    fake_hubspot.clear_log()
    run = sync_now(client, integration["id"])
    assert run["status"] == "succeeded"
    assert fake_hubspot.requests_to("/crm/v3/objects/companies")[0].query["after"] == [companies[100]["id"]]
    assert len(records(integration["id"], "companies")) == 150
    assert Customer.objects.count() == 150


def test_companies_match_by_domain_then_name(client, fake_hubspot):
    by_domain = client.post("/v1/customers", {"name": "Initech Corp", "domain": "initech.com"}).json()
    by_name = client.post("/v1/customers", {"name": "Globex"}).json()
    fake_hubspot.add_company(name="Initech", domain="www.initech.com")
    fake_hubspot.add_company(name="globex", domain=None)
    fake_hubspot.add_company(name="Hooli", domain="hooli.com")

    integration = _connect(client)

    links = {r.data["name"]: r.customer_id for r in records(integration["id"], "companies")}
    assert links["Initech"] == by_domain["id"]
    assert links["globex"] == by_name["id"]
    assert Customer.objects.get(pk=links["Hooli"]).domain == "hooli.com"
    assert integration["last_sync"]["stats"]["customers_matched"] == 2


def test_engagement_signals_from_activity_and_open_deals(client, fake_hubspot):
    now_ms = int(time.time() * 1000)
    active = fake_hubspot.add_company(name="Active", domain="active.io", last_activity=now_ms - 2 * DAY_MS)
    fake_hubspot.add_deal(company_id=active["id"], amount=24000, stage="contractsent", probability=0.9)
    fake_hubspot.add_deal(company_id=active["id"], amount=5000, closed=True)
    quiet = fake_hubspot.add_company(name="Quiet", domain="quiet.io", last_activity=now_ms - 120 * DAY_MS)

    integration = _connect(client)

    ids = {r.data["name"]: r.customer_id for r in records(integration["id"], "companies")}
    active_signals, quiet_signals = signals_of(client, ids["Active"]), signals_of(client, ids["Quiet"])
    assert active_signals["engagement.crm_last_activity_days"]["value"] == 2
    assert active_signals["engagement.crm_last_activity_days"]["score"] == 100
    assert quiet_signals["engagement.crm_last_activity_days"]["score"] < 15
    assert active_signals["engagement.open_deal_amount"]["value"] == 24000
    assert active_signals["engagement.open_deal_amount"]["label"] == "Open deal amount (stage: contractsent)"
    assert "engagement.open_deal_amount" not in quiet_signals
    active_health = client.get(f"/v1/customers/{ids['Active']}/health").json()
    quiet_health = client.get(f"/v1/customers/{ids['Quiet']}/health").json()
    assert quiet_health["score"] < active_health["score"]
    _ = quiet
