from __future__ import annotations

import threading

import pytest
from django.db import connection

from events.models import Event
from events.services import event_batch_ingest
from tests.events.conftest import post_events


def test_duplicate_inside_one_batch_first_wins(client, acme):
    events = [
        {"customer_id": acme.id, "type": "first", "idempotency_key": "k1"},
        {"customer_id": acme.id, "type": "second", "idempotency_key": "k1"},
        {"customer_id": acme.id, "type": "other", "idempotency_key": "k2"},
    ]
    body = post_events(client, events).json()
    assert body == {"object": "event_batch", "accepted": 2, "duplicates": 1, "rejected": []}
    assert Event.objects.get(idempotency_key="k1").type == "first"


def test_rejected_event_does_not_claim_its_key(client, acme):
    events = [
        {"customer_external_id": "nobody", "type": "x", "idempotency_key": "k1"},
        {"customer_id": acme.id, "type": "kept", "idempotency_key": "k1"},
    ]
    body = post_events(client, events).json()
    assert (body["accepted"], body["duplicates"]) == (1, 0)
    assert Event.objects.get(idempotency_key="k1").type == "kept"


def test_retried_batch_is_all_duplicates(client, acme):
    events = [{"customer_id": acme.id, "type": "x", "idempotency_key": f"k{i}"} for i in range(10)]
    events.append({"customer_id": acme.id, "type": "no-key"})
    assert post_events(client, events).json()["accepted"] == 11
    body = post_events(client, events).json()
    # Events without a key cannot be recognised: they are stored again.
    assert (body["accepted"], body["duplicates"]) == (1, 10)
    assert Event.objects.filter(idempotency_key__isnull=False).count() == 10


def test_keys_are_scoped_per_workspace(client, other_client, acme, other_workspace, make_customer):
    theirs = make_customer(other_workspace, "Globex")
    post_events(client, [{"customer_id": acme.id, "type": "x", "idempotency_key": "same"}])
    body = post_events(
        other_client, [{"customer_id": theirs.id, "type": "x", "idempotency_key": "same"}]
    ).json()
    assert (body["accepted"], body["duplicates"]) == (1, 0)


def _ingest_concurrently(workspace_id: str, *batches: list[dict]) -> list:
    """Ingest each batch from its own thread (and database connection), all at once."""
    barrier = threading.Barrier(len(batches))
    results: list = []
    errors: list = []

    def run(batch):
        try:
            barrier.wait(timeout=10)
            results.append(event_batch_ingest(workspace_id=workspace_id, events=batch))
        except Exception as exc:  # surfaced by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    workers = [threading.Thread(target=run, args=(batch,)) for batch in batches]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    assert not errors, errors
    return results


@pytest.mark.django_db(transaction=True)
def test_concurrent_identical_batches_store_each_event_once(workspace, make_customer):
    customers = [make_customer(workspace, f"C{i}") for i in range(5)]
    batch = [
        {"customer_id": customers[i % 5].id, "type": "x", "idempotency_key": f"key-{i:04d}"}
        for i in range(1000)
    ]
    for _ in range(3):
        Event.objects.all().delete()
        results = _ingest_concurrently(workspace.id, batch, batch)
        assert sorted(r.accepted for r in results) in ([0, 1000], [1000, 0])
        assert sorted(r.duplicates for r in results) == [0, 1000]
        assert Event.objects.count() == 1000
        assert Event.objects.values("idempotency_key").distinct().count() == 1000


@pytest.mark.django_db(transaction=True)
def test_concurrent_overlapping_batches_in_other_orders_do_not_deadlock(workspace, make_customer):
    customer = make_customer(workspace, "C")
    forward = [{"customer_id": customer.id, "type": "x", "idempotency_key": f"k{i}"} for i in range(500)]
    backward = [*reversed(forward), {"customer_id": customer.id, "type": "x", "idempotency_key": "new"}]
    results = _ingest_concurrently(workspace.id, forward, backward)
    assert sum(r.accepted for r in results) == 501
    assert sum(r.duplicates for r in results) == 500
    assert Event.objects.count() == 501
