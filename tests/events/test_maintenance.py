from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from customers.services import customer_delete
from events import services
from events.models import Event
from tests.events.conftest import post_events


def _seed(client, customer, count, timestamp="2026-01-15T00:00:00Z"):
    post_events(client, [{"customer_id": customer.id, "type": "x", "timestamp": timestamp}] * count)


def test_deleting_a_customer_deletes_its_events_in_batches(
    client, workspace, acme, make_customer, monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setattr(services, "DELETE_BATCH", 40)
    kept = make_customer(workspace, "Kept")
    _seed(client, acme, 100)
    _seed(client, kept, 3)
    with CaptureQueriesContext(connection) as queries, django_capture_on_commit_callbacks(execute=True):
        response = client.delete(f"/v1/customers/{acme.id}")  # the purge task runs eagerly
    assert response.status_code == 200
    assert not Event.objects.filter(customer_id=acme.id).exists()
    assert Event.objects.filter(customer_id=kept.id).count() == 3
    deletes = [
        q["sql"] for q in queries.captured_queries if q["sql"].startswith('DELETE FROM "events_event"')
    ]
    assert len(deletes) == 3  # 40 + 40 + 20


def test_purge_is_registered_with_customers(workspace, acme, client, settings):
    settings.CELERY_TASK_ALWAYS_EAGER = False
    _seed(client, acme, 5)
    customer_delete(workspace_id=workspace.id, customer_id=acme.id)
    from customers.services import customer_purge

    assert customer_purge(customer_id=acme.id) is True
    assert not Event.objects.exists()


def test_prune_events_deletes_before_the_date(client, acme, other_client, other_workspace, make_customer):
    theirs = make_customer(other_workspace, "Globex")
    _seed(client, acme, 4, "2026-01-01T12:00:00Z")
    _seed(client, acme, 2, "2026-02-01T00:00:00Z")
    _seed(other_client, theirs, 3, "2026-01-01T12:00:00Z")
    out = StringIO()
    call_command("prune_events", "--before", "2026-02-01", "--workspace", "acme", stdout=out)
    assert out.getvalue() == "Deleted 4 events before 2026-02-01T00:00:00+00:00 in workspace 'acme'.\n"
    assert Event.objects.filter(customer_id=acme.id).count() == 2  # the boundary is kept
    assert Event.objects.filter(customer_id=theirs.id).count() == 3

    out = StringIO()
    call_command("prune_events", "--before", "2026-03-01T00:00:00Z", stdout=out)
    assert out.getvalue() == "Deleted 5 events before 2026-03-01T00:00:00+00:00.\n"
    assert not Event.objects.exists()


def test_prune_events_rejects_bad_arguments(db):
    with pytest.raises(CommandError, match="not a date"):
        call_command("prune_events", "--before", "last week")
    with pytest.raises(CommandError, match="No workspace with slug 'nope'"):
        call_command("prune_events", "--before", "2026-01-01", "--workspace", "nope")


@pytest.fixture
def staff_client(db, client):
    from django.contrib.auth import get_user_model
    from django.test import Client

    user = get_user_model().objects.create_superuser("root", "root@example.com", "pw")
    browser = Client()
    browser.force_login(user)
    return browser


def test_admin_lists_filters_and_never_counts_the_whole_table(staff_client, client, acme):
    _seed(client, acme, 3)
    post_events(client, [{"customer_id": acme.id, "type": "special"}])
    with CaptureQueriesContext(connection) as queries:
        response = staff_client.get("/admin/events/event/?type=special")
    assert response.status_code == 200
    assert response.content.count(b"special") >= 2
    assert response.context["cl"].result_count == 1
    counts = [q["sql"] for q in queries.captured_queries if "COUNT(" in q["sql"].upper()]
    assert counts and all("LIMIT" in sql for sql in counts), counts

    event = Event.objects.first()
    detail = staff_client.get(f"/admin/events/event/{event.pk}/change/")
    assert detail.status_code == 200
    assert b'name="_save"' not in detail.content  # read-only
    assert staff_client.get("/admin/events/event/add/").status_code == 403
    assert (
        staff_client.get("/admin/events/event/?timestamp__gte=2026-01-01&workspace__id__exact=x").status_code
        == 200
    )


def test_openapi_documents_both_operations(anon_client, db):
    spec = json.loads(anon_client.get("/v1/openapi.json", HTTP_ACCEPT="application/json").content)
    post = spec["paths"]["/v1/events"]["post"]
    assert "customer_not_found" in post["description"]
    assert "timestamp_too_far_in_future" in post["description"]
    assert post["requestBody"]["content"]["application/json"]["schema"]
    assert "200" in post["responses"] and "429" in post["responses"]
    params = {p["name"] for p in spec["paths"]["/v1/events"]["get"]["parameters"]}
    assert {"customer", "type", "timestamp_after", "timestamp_before", "limit", "starting_after"} <= params
