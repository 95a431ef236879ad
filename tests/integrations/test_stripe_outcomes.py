"""Churn and win-back from Stripe subscriptions, against the fake Stripe API, through real syncs."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import orjson
import pytest
from django.test import override_settings

from customers.models import Customer, Outcome
from integrations.models import SyncedRecord
from integrations.outcomes import stripe_outcome
from tests.integrations.helpers import sync_now
from tests.webhooks.receiver import Receiver
from webhooks.models import WebhookMessage
from webhooks.services import webhook_endpoint_create

pytestmark = pytest.mark.django_db(transaction=True)
DAY = 86400


def _iso(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _customer(fake, email: str) -> dict:
    return fake.add_customer(email=email, name=email.split("@")[0], created=int(time.time()) - 40 * DAY)


def _perly(client, email: str) -> dict:
    customer = Customer.objects.get(email=email)
    return client.get(f"/v1/customers/{customer.id}/outcomes").json()["data"], customer


@pytest.fixture
def receiver(workspace):
    """A live endpoint for customer.churned (deliveries run after each commit)."""
    with override_settings(PERLY_WEBHOOK_ALLOW_PRIVATE_URLS=True), Receiver() as live:
        webhook_endpoint_create(
            workspace_id=workspace.id, data={"url": live.url(), "events": ["customer.churned"]}
        )
        yield live


def test_the_first_sync_records_churn_at_the_last_ended_at(client, fake_stripe, connect_stripe):
    now = int(time.time())
    gone = _customer(fake_stripe, "ap@gone.io")
    fake_stripe.add_subscription(
        gone["id"],
        status="canceled",
        created=now - 30 * DAY,
        canceled_at=now - 12 * DAY,
        ended_at=now - 10 * DAY,
    )
    fake_stripe.add_subscription(
        gone["id"],
        status="canceled",
        created=now - 40 * DAY,
        canceled_at=now - 20 * DAY,
        ended_at=now - 20 * DAY,
    )
    fake_stripe.add_subscription(gone["id"], status="incomplete_expired", created=now - 5 * DAY)
    staying = _customer(fake_stripe, "ap@staying.io")
    fake_stripe.add_subscription(staying["id"], status="active")
    fake_stripe.add_subscription(
        staying["id"],
        status="canceled",
        created=now - 30 * DAY,
        canceled_at=now - 9 * DAY,
        ended_at=now - 9 * DAY,
    )
    trial = _customer(fake_stripe, "ap@trial.io")
    fake_stripe.add_subscription(trial["id"], status="trialing")

    assert connect_stripe()["last_sync"]["status"] == "succeeded"

    outcomes, customer = _perly(client, "ap@gone.io")
    assert [(o["kind"], o["at"], o["source"]) for o in outcomes] == [
        ("churned", _iso(now - 10 * DAY), "stripe")
    ]
    assert (customer.lifecycle_stage, customer.churned_at.timestamp()) == ("churned", now - 10 * DAY)
    for email in ("ap@staying.io", "ap@trial.io"):
        outcomes, customer = _perly(client, email)
        assert outcomes == [] and customer.churned_at is None
    # The subscription records keep Stripe's dates.
    record = SyncedRecord.objects.filter(stream="subscriptions", data__status="canceled").first()
    assert {"ended_at", "canceled_at"} <= set(record.data)


def test_cancel_then_win_back_from_stripe_events(client, fake_stripe, connect_stripe, receiver):
    customer = _customer(fake_stripe, "ap@fickle.io")
    subscription = fake_stripe.add_subscription(customer["id"], created=int(time.time()) - 20 * DAY)
    integration = connect_stripe()
    assert _perly(client, "ap@fickle.io")[0] == []

    ended = int(time.time()) - 60  # the end of the period canceled earlier
    fake_stripe.cancel_subscription(subscription["id"], ended_at=ended)
    assert sync_now(client, integration["id"])["status"] == "succeeded"

    outcomes, perly = _perly(client, "ap@fickle.io")
    assert [(o["kind"], o["at"], o["source"]) for o in outcomes] == [("churned", _iso(ended), "stripe")]
    [message] = WebhookMessage.objects.filter(event_type="customer.churned")
    payload = orjson.loads(message.payload)
    assert payload["data"]["object"]["id"] == perly.id
    assert payload["data"]["object"]["churned_at"] == _iso(ended)
    assert [orjson.loads(r.body)["type"] for r in receiver.received()] == ["customer.churned"]

    # Nothing new: a second sync records nothing more.
    sync_now(client, integration["id"])
    assert Outcome.objects.count() == 1

    # Win-back: a new live subscription, at its creation.
    created = int(time.time()) - 5
    new = fake_stripe.add_subscription(customer["id"], created=created)
    fake_stripe.add_event("customer.subscription.created", new)
    assert sync_now(client, integration["id"])["status"] == "succeeded"

    outcomes, perly = _perly(client, "ap@fickle.io")
    assert [(o["kind"], o["at"], o["source"]) for o in outcomes] == [
        ("reactivated", _iso(created), "stripe"),
        ("churned", _iso(ended), "stripe"),
    ]
    assert (perly.churned_at, perly.lifecycle_stage) == (None, "active")
    assert WebhookMessage.objects.filter(event_type="customer.churned").count() == 1


def test_a_win_back_entered_by_hand_is_not_undone_by_the_next_sync(client, fake_stripe, connect_stripe):
    now = int(time.time())
    customer = _customer(fake_stripe, "ap@manual.io")
    subscription = fake_stripe.add_subscription(
        customer["id"],
        status="canceled",
        created=now - 30 * DAY,
        canceled_at=now - 3 * DAY,
        ended_at=now - 3 * DAY,
    )
    integration = connect_stripe()
    perly = Customer.objects.get(email="ap@manual.io")
    assert client.patch(f"/v1/customers/{perly.id}", {"lifecycle_stage": "active"}).status_code == 200

    fake_stripe.update("subscription", subscription["id"], metadata={"note": "touched"})
    assert sync_now(client, integration["id"])["status"] == "succeeded"

    perly.refresh_from_db()
    assert (perly.churned_at, perly.lifecycle_stage) == (None, "active")
    assert list(Outcome.objects.filter(customer=perly).values_list("kind", "source")) == [
        ("reactivated", "api"),
        ("churned", "stripe"),
    ]


@pytest.mark.parametrize(
    ("subscriptions", "churned_at", "expected"),
    [
        ([], None, None),
        ([{"status": "canceled", "ended_at": 1_700_000_000}], None, ("churned", 1_700_000_000)),
        ([{"status": "canceled", "ended_at": None}], None, None),  # no end date: nothing to date it by
        ([{"status": "canceled", "ended_at": 1_700_000_000}, {"status": "past_due"}], None, None),
        ([{"status": "canceled", "ended_at": 1_700_000_000}], 1_600_000_000, None),  # already churned
        ([{"status": "incomplete", "created": 1_800_000_000}], 1_700_000_000, None),  # not live yet
        ([{"status": "active", "created": 1_800_000_000}], 1_700_000_000, ("reactivated", 1_800_000_000)),
        ([{"status": "active", "created": 1_600_000_000}], 1_700_000_000, None),  # live before the churn
    ],
)
def test_stripe_outcome_rules(subscriptions, churned_at, expected):
    churned = datetime.fromtimestamp(churned_at, tz=UTC) if churned_at else None
    got = stripe_outcome({"subscriptions": subscriptions}, churned)
    assert got == (None if expected is None else (expected[0], datetime.fromtimestamp(expected[1], tz=UTC)))
