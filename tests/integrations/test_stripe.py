"""The Stripe connector against the fake Stripe API, driven through the public API."""

from __future__ import annotations

import time

import pytest

from customers.models import Customer
from integrations.models import StreamState
from tests.integrations.conftest import STRIPE_KEY, connect
from tests.integrations.helpers import cursor, records, signals_of, sync_now

pytestmark = pytest.mark.django_db(transaction=True)
DAY = 86400


def _seed(fake, count: int, prefix: str = "c") -> list[dict]:
    customers = []
    for i in range(count):
        customer = fake.add_customer(
            email=f"billing@{prefix}{i}.example.com",
            name=f"{prefix.upper()}{i} Inc",
            created=int(time.time()) - DAY * 3 - i,
        )
        fake.add_subscription(customer["id"], created=customer["created"])
        fake.add_invoice(customer["id"], created=customer["created"])
        customers.append(customer)
    return customers


def test_full_sync_reads_every_page_of_every_stream(client, fake_stripe, connect_stripe):
    _seed(fake_stripe, 230)

    integration = connect_stripe()

    run = integration["last_sync"]
    assert run["status"] == "succeeded"
    assert run["stats"]["records_read"] == 690
    assert run["stats"]["customers_created"] == 230
    assert len(records(integration["id"], "customers")) == 230
    assert len(records(integration["id"], "subscriptions")) == 230
    assert len(fake_stripe.requests_to("/v1/customers")) == 1 + 3  # the check, then 100 + 100 + 30
    assert fake_stripe.requests_to("/v1/subscriptions")[0].query["status"] == ["all"]
    assert Customer.objects.count() == 230


def test_incremental_sync_reads_new_objects_and_events_for_changes(client, fake_stripe, connect_stripe):
    old = _seed(fake_stripe, 3)
    integration = connect_stripe()
    fake_stripe.clear_log()
    subscription = next(s for s in fake_stripe.objects["subscription"] if s["customer"] == old[0]["id"])
    fake_stripe.update("subscription", subscription["id"], status="past_due")
    fake_stripe.add_customer(email="new@fresh.io", name="Fresh", created=int(time.time()))

    run = sync_now(client, integration["id"])

    assert run["status"] == "succeeded"
    listed = fake_stripe.requests_to("/v1/customers")[0]
    assert "created[gte]" in listed.query and "starting_after" not in listed.query
    assert "customer.subscription.updated" in fake_stripe.requests_to("/v1/events")[0].query.get(
        "types[3]", []
    )
    assert run["stats"]["customers_created"] == 1
    statuses = {r.provider_id: r.data["status"] for r in records(integration["id"], "subscriptions")}
    assert statuses[subscription["id"]] == "past_due"


def test_an_event_cursor_older_than_25_days_forces_a_full_refresh(client, fake_stripe, connect_stripe):
    _seed(fake_stripe, 2)
    integration = connect_stripe()
    StreamState.objects.filter(integration_id=integration["id"], stream="events").update(
        cursor={"since": int(time.time()) - 26 * DAY, "starting_after": None}
    )
    fake_stripe.clear_log()

    sync_now(client, integration["id"])

    assert "created[gte]" not in fake_stripe.requests_to("/v1/customers")[0].query
    assert fake_stripe.requests_to("/v1/events") == []


def test_a_429_mid_paging_is_retried_after_retry_after(client, fake_stripe, connect_stripe):
    _seed(fake_stripe, 150)
    fake_stripe.fail(429, "/v1/customers", skip=2, retry_after=1)  # the check and page 1 pass

    started = time.monotonic()
    integration = connect_stripe()

    run = integration["last_sync"]
    assert time.monotonic() - started >= 1.0
    assert run["status"] == "succeeded"
    assert run["stats"]["rate_limited_retries"] == 1
    assert len(records(integration["id"], "customers")) == 150
    second_page = fake_stripe.requests_to("/v1/customers")[2:]
    assert [r.query.get("starting_after") for r in second_page] == [[fake_stripe_id(fake_stripe, 99)]] * 2


def fake_stripe_id(fake, position: int) -> str:
    """The id at `position` in Stripe's newest-first customer order."""
    ordered = sorted(fake.objects["customer"], key=lambda o: (o["created"], o["id"]), reverse=True)
    return ordered[position]["id"]


def test_a_401_marks_the_integration_needs_reauth_and_stops(client, fake_stripe, connect_stripe):
    _seed(fake_stripe, 1)
    integration = connect_stripe()
    fake_stripe.api_keys.clear()  # the key was rolled in the dashboard
    fake_stripe.clear_log()

    run = sync_now(client, integration["id"])

    assert run["status"] == "failed"
    assert run["error"].startswith("Stripe answered 401: Invalid API Key provided")
    body = client.get(f"/v1/integrations/{integration['id']}").json()
    assert body["status"] == "needs_reauth"
    assert body["next_sync_at"] is None
    assert len(fake_stripe.requests_to("/v1/")) == 1  # stopped at the first 401


def test_a_crash_mid_stream_resumes_from_the_checkpoint_without_duplicates(
    client, fake_stripe, connect_stripe
):
    customers = _seed(fake_stripe, 250)
    # Page 2 of customers keeps failing (retries exhausted): that stream stops after page 1.
    fake_stripe.fail(500, "/v1/customers", skip=2, times=6)

    integration = connect_stripe()

    run = integration["last_sync"]
    assert run["status"] == "partial"
    assert run["error"].startswith("customers: Stripe answered 500")
    assert len(records(integration["id"], "customers")) == 100
    assert cursor(integration["id"], "customers")["starting_after"] == fake_stripe_id(fake_stripe, 99)
    fake_stripe.clear_log()

    run = sync_now(client, integration["id"])

    assert run["status"] == "succeeded"
    first = fake_stripe.requests_to("/v1/customers")[0]
    assert first.query["starting_after"] == [fake_stripe_id(fake_stripe, 99)]
    assert len(records(integration["id"], "customers")) == 250
    assert Customer.objects.count() == len(customers)


def test_matching_prefers_the_link_then_email_then_email_domain(client, fake_stripe):
    by_email = client.post("/v1/customers", {"name": "Initech", "email": "AP@initech.com"}).json()
    by_domain = client.post("/v1/customers", {"name": "Globex", "domain": "globex.com"}).json()
    fake_stripe.add_customer(email="ap@initech.com", name="Initech AP")
    fake_stripe.add_customer(email="finance@globex.com", name="Globex Finance")
    fake_stripe.add_customer(email="hello@hooli.com", name="Hooli")

    integration = connect(client, "stripe", {"api_key": STRIPE_KEY}).json()

    stats = integration["last_sync"]["stats"]
    assert (stats["customers_matched"], stats["customers_created"], stats["customers_updated"]) == (2, 1, 2)
    links = {r.data["email"]: r.customer_id for r in records(integration["id"], "customers")}
    assert links["ap@initech.com"] == by_email["id"]
    assert links["finance@globex.com"] == by_domain["id"]
    created = Customer.objects.get(pk=links["hello@hooli.com"])
    assert (created.name, created.email, created.domain) == ("Hooli", "hello@hooli.com", "hooli.com")
    # Blank fields are filled, set ones never overwritten.
    assert client.get(f"/v1/customers/{by_domain['id']}").json()["email"] == "finance@globex.com"
    assert client.get(f"/v1/customers/{by_email['id']}").json()["domain"] == "initech.com"
    assert client.get(f"/v1/customers/{by_email['id']}").json()["name"] == "Initech"
    # A second sync keeps every link and creates nothing.
    run = sync_now(client, integration["id"])
    assert run["stats"]["customers_created"] == 0
    assert Customer.objects.count() == 3


def test_create_customers_false_leaves_unmatched_accounts_unlinked(client, fake_stripe):
    fake_stripe.add_customer(email="hello@hooli.com", name="Hooli")

    integration = connect(client, "stripe", {"api_key": STRIPE_KEY}, create_customers=False).json()

    assert integration["last_sync"]["stats"]["customers_created"] == 0
    assert Customer.objects.count() == 0
    assert records(integration["id"], "customers")[0].customer_id is None


def test_billing_signals_rank_past_due_with_failures_below_active_on_time(client, fake_stripe):
    now = int(time.time())
    good = fake_stripe.add_customer(email="ap@good.io", name="Good")
    fake_stripe.add_subscription(good["id"], status="active", unit_amount=12000, quantity=2, interval="year")
    fake_stripe.add_invoice(good["id"], status="paid")
    fake_stripe.add_charge(good["id"], status="succeeded")
    bad = fake_stripe.add_customer(email="ap@bad.io", name="Bad")
    fake_stripe.add_subscription(bad["id"], status="past_due", unit_amount=5000)
    fake_stripe.add_invoice(
        bad["id"],
        status="open",
        amount_due=5000,
        amount_remaining=5000,
        attempt_count=3,
        due_date=now - 5 * DAY,
    )
    for days in (20, 10, 2):
        fake_stripe.add_charge(bad["id"], status="failed", created=now - days * DAY)

    integration = connect(client, "stripe", {"api_key": STRIPE_KEY}).json()

    assert integration["last_sync"]["stats"]["signals_written"] == 8
    ids = {r.data["email"]: r.customer_id for r in records(integration["id"], "customers")}
    good_signals, bad_signals = signals_of(client, ids["ap@good.io"]), signals_of(client, ids["ap@bad.io"])
    assert good_signals["billing.mrr"]["value"] == 20.0  # 120.00 x 2 per year = 20.00 per month
    assert bad_signals["billing.mrr"]["value"] == 50.0
    assert good_signals["billing.subscription_status"]["score"] == 100
    assert bad_signals["billing.subscription_status"]["score"] == 30
    assert bad_signals["billing.failed_payments_90d"]["value"] == 3
    assert bad_signals["billing.overdue_amount"]["value"] == 50.0
    good_health = client.get(f"/v1/customers/{ids['ap@good.io']}/health").json()
    bad_health = client.get(f"/v1/customers/{ids['ap@bad.io']}/health").json()
    assert bad_health["score"] < good_health["score"]
    assert {s["key"] for s in bad_health["signals"]} >= {"billing.mrr", "billing.overdue_amount"}
