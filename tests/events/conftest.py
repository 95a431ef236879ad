"""Fixtures for the events tests: customers to send events about, and a hook recorder."""

from __future__ import annotations

import pytest

from customers.services import customer_create
from events import hooks


@pytest.fixture
def make_customer(db):
    def make(workspace, name="Initech", **fields):
        return customer_create(workspace_id=workspace.id, data={"name": name, **fields})

    return make


@pytest.fixture
def acme(workspace, make_customer):
    return make_customer(workspace, "Acme Labs", external_id="acct_1")


@pytest.fixture
def hook_calls():
    """Every (workspace_id, customer_ids) the ingestion hook was called with."""
    calls: list[tuple[str, set[str]]] = []

    def listener(workspace_id: str, customer_ids: set[str]) -> None:
        calls.append((workspace_id, customer_ids))

    hooks.on_events_ingested(listener)
    yield calls
    hooks._listeners.remove(listener)


def post_events(client, events, **extra):
    return client.post("/v1/events", {"events": events}, format="json", **extra)
