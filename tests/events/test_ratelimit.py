from __future__ import annotations

from events.models import Event
from tests.events.conftest import post_events


def test_events_bucket_counts_events_and_sets_headers(client, acme):
    response = post_events(client, [{"customer_id": acme.id, "type": "x"}] * 250)
    assert response.status_code == 200
    assert response["X-RateLimit-Resource"] == "events"
    assert response["X-RateLimit-Limit"] == "10000"
    assert response["X-RateLimit-Remaining"] == "9750"
    assert int(response["X-RateLimit-Reset"]) % 60 == 0


def test_rejected_events_count_too(client, acme):
    response = post_events(client, [{"type": "no customer"}] * 10)
    assert response.json()["accepted"] == 0
    assert response["X-RateLimit-Remaining"] == "9990"


def test_batch_larger_than_what_is_left_is_refused_and_stores_nothing(workspace, make_client, acme):
    client = make_client(workspace, rate_limit_events=1500)
    batch = [{"customer_id": acme.id, "type": "x"}] * 1000
    assert post_events(client, batch).status_code == 200
    response = post_events(client, batch)
    assert response.status_code == 429
    error = response.json()["error"]
    assert (error["type"], error["code"]) == ("rate_limit_error", "rate_limit_exceeded")
    assert 1 <= int(response["Retry-After"]) <= 60
    assert response["X-RateLimit-Remaining"] == "500"
    assert response["X-RateLimit-Limit"] == "1500"
    assert Event.objects.count() == 1000
    # What is left can still be used.
    assert post_events(client, batch[:500]).status_code == 200
    assert Event.objects.count() == 1500


def test_per_key_override_and_keys_are_counted_separately(workspace, make_client, acme):
    small = make_client(workspace, rate_limit_events=5)
    default = make_client(workspace)
    assert post_events(small, [{"customer_id": acme.id, "type": "x"}] * 6).status_code == 429
    response = post_events(default, [{"customer_id": acme.id, "type": "x"}] * 6)
    assert response.status_code == 200
    assert response["X-RateLimit-Remaining"] == "9994"
    assert not Event.objects.exclude(type="x").exists()


def test_envelope_error_charges_nothing(client, acme):
    client.post("/v1/events", {"events": "nope"}, format="json")
    response = post_events(client, [{"customer_id": acme.id, "type": "x"}])
    assert response["X-RateLimit-Remaining"] == "9999"


def test_reads_use_the_read_bucket(client):
    response = client.get("/v1/events")
    assert response["X-RateLimit-Resource"] == "read"
