"""Health test helpers: customers and events created directly (the ingestion API is not needed)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from customers.models import Customer
from events.models import Event


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


@pytest.fixture(autouse=True)
def published(monkeypatch):
    """Records the webhook events health publishes (the outbox is the webhooks app's concern)."""
    calls: list[dict] = []
    monkeypatch.setattr("health.rescore.webhook_event_publish", lambda **kwargs: calls.append(kwargs))
    return calls
