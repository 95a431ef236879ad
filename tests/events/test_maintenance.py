from __future__ import annotations

import json
import threading
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from customers.models import Customer
from customers.services import customer_delete, customer_purge
from events import services
from events.models import Event
from events.storage import Row, ingest_transaction, insert_rows
from tests.events.conftest import post_events
from tests.support.worker import wait_for


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
    # Each delete is one statement that also takes its events off the daily type counters.
    deletes = [q["sql"] for q in queries.captured_queries if 'DELETE FROM "events_event"' in q["sql"]]
    # 40 + 40 + 20, then the final sweep under the workspace's exclusive ingest lock.
    assert len(deletes) == 4
    sweep = next(i for i, q in enumerate(queries.captured_queries) if q["sql"] == deletes[-1])
    assert "pg_advisory_xact_lock(" in queries.captured_queries[sweep - 1]["sql"]


def _sweep_waiting() -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
            " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        )
        return cursor.fetchone()[0] > 0


@pytest.mark.django_db(transaction=True)
def test_purge_waits_for_a_batch_in_flight_and_deletes_what_it_stored(workspace, acme):
    """No foreign key guards events -> customers: a batch that resolved the customer before its
    soft delete and commits during the purge must not leave orphans behind."""
    now = timezone.now()
    resolved = threading.Event()
    release = threading.Event()
    outcome: dict[str, object] = {}

    def batch_in_flight() -> None:
        def work():
            inserted = insert_rows(workspace.id, [Row(acme.id, "login", now, b"{}", "late-1")], now)
            resolved.set()
            release.wait(30)
            return inserted

        try:
            outcome["batch"] = ingest_transaction(workspace.id, work)
        finally:
            connection.close()

    def purge() -> None:
        try:
            outcome["purge"] = customer_purge(customer_id=acme.id)
        finally:
            connection.close()

    batch = threading.Thread(target=batch_in_flight)
    batch.start()
    assert resolved.wait(30)
    Customer.all_objects.filter(pk=acme.id).update(deleted_at=now)  # the API's soft delete
    purger = threading.Thread(target=purge)
    purger.start()
    wait_for(_sweep_waiting, timeout=30, message="the purge's sweep waiting for the batch in flight")
    release.set()
    batch.join(30)
    purger.join(30)
    assert outcome == {"batch": [acme.id], "purge": True}
    assert not Event.objects.filter(customer_id=acme.id).exists()
    assert not Customer.all_objects.filter(pk=acme.id).exists()

    # A batch after the soft delete resolves nothing: the event is rejected, nothing stored.
    result = services.event_batch_ingest(
        workspace_id=workspace.id, events=[{"customer_id": acme.id, "type": "login"}]
    )
    assert (result.accepted, [r.code for r in result.rejected]) == (0, ["customer_not_found"])


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
