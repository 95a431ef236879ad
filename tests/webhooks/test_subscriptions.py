"""Who receives what: subscription filters, "*", inactive and disabled endpoints, the outbox rows."""

from __future__ import annotations

import pytest
from django.db import transaction

from tests.webhooks.conftest import verify
from webhooks.models import WebhookMessage
from webhooks.services import webhook_event_publish

pytestmark = pytest.mark.django_db


def types_received(receiver, path: str) -> list[str]:
    import json

    return [json.loads(r.body)["type"] for r in receiver.received(path)]


def test_endpoints_receive_only_their_types_and_star_receives_all(publish, receiver, make_endpoint, customer):
    make_endpoint(receiver.url("/created"), ["customer.created"])
    make_endpoint(receiver.url("/changes"), ["customer.updated", "customer.deleted"])
    make_endpoint(receiver.url("/all"), ["*"])
    created = publish("post", "/v1/customers", {"name": "Globex"}).json()
    publish("patch", f"/v1/customers/{created['id']}", {"plan": "growth"})
    publish("delete", f"/v1/customers/{created['id']}")
    assert types_received(receiver, "/created") == ["customer.created"]
    assert types_received(receiver, "/changes") == ["customer.updated", "customer.deleted"]
    assert types_received(receiver, "/all") == ["customer.created", "customer.updated", "customer.deleted"]


def test_inactive_endpoint_gets_nothing(publish, receiver, make_endpoint):
    make_endpoint(receiver.url("/paused"), ["*"], active=False)
    publish("post", "/v1/customers", {"name": "Globex"})
    assert receiver.received() == []
    assert WebhookMessage.objects.count() == 0


def test_deactivating_fails_pending_messages(publish, client, receiver, endpoint, customer):
    from tests.webhooks.receiver import Reply

    receiver.script("/hook", Reply(500))
    publish("patch", f"/v1/customers/{customer['id']}", {"plan": "growth"})
    client.patch(f"/v1/webhooks/{endpoint['id']}", {"active": False})
    assert set(WebhookMessage.objects.values_list("status", "last_error")) == {
        ("failed", "The endpoint is inactive.")
    }


def test_other_workspaces_events_never_reach_an_endpoint(
    receiver, endpoint, other_client, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        other_client.post("/v1/customers", {"name": "Not yours"})
    assert receiver.received() == []


def test_outbox_rows_are_written_in_the_callers_transaction(endpoint, workspace):
    with pytest.raises(RuntimeError), transaction.atomic():
        webhook_event_publish(
            workspace_id=workspace.id, event_type="customer.created", data_object={"id": "cus_x"}
        )
        assert WebhookMessage.objects.count() == 1
        raise RuntimeError("the change rolls back")
    assert WebhookMessage.objects.count() == 0


def test_unknown_event_type_is_a_programming_error(workspace):
    with pytest.raises(ValueError, match="webhooks/catalog.py"):
        webhook_event_publish(workspace_id=workspace.id, event_type="customer.exploded", data_object={})


def test_health_and_integration_types_publish_through_the_same_entry_point(
    receiver, endpoint, workspace, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        webhook_event_publish(
            workspace_id=workspace.id,
            event_type="health.status_changed",
            data_object={"id": "cus_1", "object": "customer"},
            previous_attributes={"health": {"status": "healthy"}},
        )
    event = verify(endpoint["secret"], receiver.received()[0])
    assert event["type"] == "health.status_changed"
    assert event["data"]["previous_attributes"] == {"health": {"status": "healthy"}}


def test_publish_many_writes_the_same_messages_in_one_go(
    receiver, make_endpoint, workspace, django_capture_on_commit_callbacks
):
    from webhooks.services import webhook_events_publish_many

    everything = make_endpoint(receiver.url("/all"), ["*"])
    make_endpoint(receiver.url("/deleted-only"), ["customer.deleted"])
    objects = [{"id": f"cus_{n}", "object": "customer"} for n in range(3)]
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        ids = webhook_events_publish_many(
            workspace_id=workspace.id, event_type="customer.created", data_objects=objects
        )
    assert len(ids) == 3
    events = [verify(everything["secret"], request) for request in receiver.received("/all")]
    assert sorted(e["data"]["object"]["id"] for e in events) == ["cus_0", "cus_1", "cus_2"]
    assert {e["id"] for e in events} == set(ids)
    assert receiver.received("/deleted-only") == []
