"""Health test helpers: customers and events created directly (the ingestion API is not needed)."""

from __future__ import annotations

from datetime import datetime, timedelta

import orjson
import pytest
from django.test import override_settings
from django.utils import timezone

from customers.models import Customer
from events.models import Event
from tests.webhooks.receiver import Receiver
from webhooks.catalog import EVENT_TYPES
from webhooks.models import WebhookEndpoint, WebhookMessage
from webhooks.services import webhook_endpoint_create

# Six catalog signals which, equally weighted and all at 100, overshoot: each contribution rounds
# to 16.67 and the six add up to 100.02 (the score must still read 100).
SIX_EQUAL_SIGNALS = (
    "billing.mrr",
    "billing.overdue_amount",
    "billing.failed_payments_90d",
    "billing.subscription_status",
    "support.open_cases",
    "support.high_priority_open_cases",
)


@pytest.fixture
def make_customer(workspace):
    counter = {"n": 0}

    def make(name: str | None = None, ws=None, **fields):
        counter["n"] += 1
        data = {"name": name or f"Customer {counter['n']}", **fields}
        # Created directly: these tests are about health, not the customers service's webhooks.
        return Customer.objects.create(workspace_id=(ws or workspace).id, **data)

    return make


def add_events(
    customer, when: list[datetime], types: list[str] | None = None, users: list[str] | None = None
):
    """One event per timestamp; types and users cycle when given."""
    rows = []
    for index, timestamp in enumerate(when):
        properties = {}
        if users:
            properties["user_id"] = users[index % len(users)]
        rows.append(
            Event(
                workspace_id=customer.workspace_id,
                customer_id=customer.id,
                type=(types[index % len(types)] if types else "login"),
                timestamp=timestamp,
                properties=properties,
            )
        )
    Event.objects.bulk_create(rows)


def days_ago(days: float, now: datetime | None = None) -> datetime:
    return (now or timezone.now()) - timedelta(days=days)


class HealthOutbox:
    """What a workspace's webhook endpoint subscribed to health.* has been sent: the outbox rows
    webhooks.services wrote in the scoring transaction, as the event bodies the customer gets."""

    def __init__(self, endpoint: WebhookEndpoint, receiver: Receiver) -> None:
        self.endpoint = endpoint
        self.receiver = receiver
        self._seen: set[str] = set()

    def events(self) -> list[dict]:
        """Every event written for the endpoint, in publication order."""
        messages = WebhookMessage.objects.filter(endpoint=self.endpoint).order_by("created_at", "id")
        events = []
        for message in messages:
            event = orjson.loads(message.payload)
            # The row's type and the signed body's type are the same fact, stored twice.
            assert event["type"] == message.event_type
            events.append(event)
        return events

    def new(self) -> list[dict]:
        """The events written since the last call (what the previous rescore published)."""
        fresh = [event for event in self.events() if event["id"] not in self._seen]
        self._seen.update(event["id"] for event in fresh)
        return fresh


@pytest.fixture
def health_outbox(workspace):
    """A real endpoint subscribed to the health events, on a live receiver at 127.0.0.1 (eager
    tasks deliver right after the commit, so the receiver must answer 200)."""
    with override_settings(PERLY_WEBHOOK_ALLOW_PRIVATE_URLS=True), Receiver() as receiver:
        endpoint, _secret = webhook_endpoint_create(
            workspace_id=workspace.id,
            data={"url": receiver.url(), "events": [t for t in EVENT_TYPES if t.startswith("health.")]},
        )
        yield HealthOutbox(endpoint, receiver)
