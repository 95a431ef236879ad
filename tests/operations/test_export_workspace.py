"""`manage.py export_workspace` + `loaddata`: one workspace restored, nobody else's rows touched."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings

from customers.models import Customer
from events.models import Event
from perly.models import Workspace
from webhooks.models import WebhookEndpoint, WebhookMessage


@pytest.fixture
def populated(client, other_client):
    """Acme: customers (one churned), events, a webhook endpoint with messages. Globex: a customer of its own."""
    with override_settings(PERLY_WEBHOOK_ALLOW_PRIVATE_URLS=True):
        client.post("/v1/webhooks", {"url": "http://127.0.0.1:9/hook", "events": ["customer.created"]})
    ids = [
        client.post("/v1/customers", {"name": f"C{i}", "metadata": {"i": str(i)}}).json()["id"]
        for i in range(3)
    ]
    events = [{"customer_id": ids[0], "type": "login", "idempotency_key": f"k{i}"} for i in range(5)]
    assert client.post("/v1/events", {"events": events}, format="json").status_code == 200
    assert client.patch(f"/v1/customers/{ids[2]}", {"churned_at": "2026-01-06T00:00:00Z"}).status_code == 200
    other_client.post("/v1/customers", {"name": "Globex customer"})
    return ids


def snapshot(client, customer_ids) -> dict:
    """What an API user sees of the workspace."""
    return {
        "customers": client.get("/v1/customers?limit=100").json()["data"],
        "events": client.get(f"/v1/events?customer={customer_ids[0]}&limit=100").json()["data"],
        "webhooks": client.get("/v1/webhooks").json()["data"],
        "health": [client.get(f"/v1/customers/{cid}/health").json() for cid in customer_ids],
        "event_types": client.get("/v1/events/types").json()["data"],
        "outcomes": [client.get(f"/v1/customers/{cid}/outcomes").json()["data"] for cid in customer_ids],
    }


def export(workspace: str, path) -> str:
    out = StringIO()
    call_command("export_workspace", workspace, "--output", str(path), stdout=out)
    return out.getvalue()


def test_a_deleted_workspace_comes_back_from_its_export(
    client, workspace, other_workspace, populated, tmp_path
):
    before = snapshot(client, populated)
    stored = list(Event.objects.order_by("id").values_list("id", "timestamp", "received_at", "properties"))
    fixture = tmp_path / "acme.jsonl"
    output = export("acme", fixture)
    assert "customers.Customer: 3" in output
    assert "events.Event: 5" in output
    assert "events.EventTypeDaily: " in output
    assert "customers.Outcome: 1" in output
    assert "webhooks.WebhookEndpoint: 1" in output
    assert "webhooks.WebhookMessage: 3" in output
    rows = [json.loads(line) for line in fixture.read_text().splitlines()]
    assert rows[0]["model"] == "perly.workspace"
    assert all(row["fields"].get("workspace", workspace.id) == workspace.id for row in rows)
    assert "Globex customer" not in fixture.read_text()

    Workspace.objects.filter(pk=workspace.pk).delete()  # the accident
    assert not Customer.all_objects.filter(workspace_id=workspace.id).exists()
    call_command("loaddata", str(fixture), stdout=StringIO())

    assert snapshot(client, populated) == before  # the same key works again, too
    # Exactly as stored, to the microsecond (the API shows whole seconds, cursors use more).
    assert (
        list(Event.objects.order_by("id").values_list("id", "timestamp", "received_at", "properties"))
        == stored
    )
    assert WebhookMessage.objects.filter(workspace_id=workspace.id).count() == 3
    assert WebhookEndpoint.objects.get(workspace_id=workspace.id).secret_encrypted
    assert Customer.objects.filter(workspace=other_workspace).count() == 1  # untouched


def test_unknown_workspace_and_bad_file_name_are_refused(db, tmp_path):
    with pytest.raises(CommandError, match="No workspace with slug or id 'nope'"):
        export("nope", tmp_path / "x.jsonl")
    Workspace.objects.create(slug="acme2", name="Acme 2")
    with pytest.raises(CommandError, match=r"--output must end in \.jsonl"):
        export("acme2", tmp_path / "x.json")
