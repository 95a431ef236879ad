from __future__ import annotations

import pytest

from events.models import Event
from tests.events.conftest import post_events
from tests.platform.helpers import start_early_in_a_window


@pytest.fixture(autouse=True)
def _one_window():
    # Fixed windows: spending a bucket and checking it must not straddle a minute boundary.
    start_early_in_a_window()


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
    # The refused request itself cost its one unit (taken before the body was read).
    assert response["X-RateLimit-Remaining"] == "499"
    assert response["X-RateLimit-Limit"] == "1500"
    assert Event.objects.count() == 1000
    # What is left can still be used.
    assert post_events(client, batch[:499]).status_code == 200
    assert Event.objects.count() == 1499


def test_per_key_override_and_keys_are_counted_separately(workspace, make_client, acme):
    small = make_client(workspace, rate_limit_events=5)
    default = make_client(workspace)
    assert post_events(small, [{"customer_id": acme.id, "type": "x"}] * 6).status_code == 429
    response = post_events(default, [{"customer_id": acme.id, "type": "x"}] * 6)
    assert response.status_code == 200
    assert response["X-RateLimit-Remaining"] == "9994"
    assert not Event.objects.exclude(type="x").exists()


# Every way a request can fail before the batch is known. Each must still cost one unit, and with
# the bucket empty each must be a 429 before its body is read or parsed (a 400 or 413 would mean
# the server did the work for free).
BAD_REQUESTS = {
    "not_json": ("{not json", "application/json"),
    "not_an_object": ("[1, 2]", "application/json"),
    "events_missing": ("{}", "application/json"),
    "events_not_a_list": ('{"events": "nope"}', "application/json"),
    "events_empty": ('{"events": []}', "application/json"),
    "too_many_events": ('{"events": [' + ",".join(["{}"] * 1001) + "]}", "application/json"),
    "unknown_field": ('{"events": [{}], "extra": 1}', "application/json"),
    "wrong_media_type": ("events=1", "text/plain"),
    "body_over_4_mib": ('{"events": ["' + "x" * (4 * 1024 * 1024) + '"]}', "application/json"),
    "4_mib_invalid_json": ("[" * (4 * 1024 * 1024 - 16), "application/json"),
}


@pytest.mark.parametrize("name", sorted(BAD_REQUESTS))
def test_a_bad_request_costs_one_event_unit(client, name):
    body, content_type = BAD_REQUESTS[name]
    response = client.post("/v1/events", body, content_type=content_type)
    assert response.status_code in (400, 413, 415), response.content
    assert response["X-RateLimit-Resource"] == "events"
    assert response["X-RateLimit-Remaining"] == "9999"


@pytest.mark.parametrize("name", sorted(BAD_REQUESTS))
def test_empty_bucket_refuses_a_bad_request_before_reading_it(workspace, make_client, acme, name):
    client = make_client(workspace, rate_limit_events=1)
    assert post_events(client, [{"customer_id": acme.id, "type": "x"}]).status_code == 200
    body, content_type = BAD_REQUESTS[name]
    response = client.post("/v1/events", body, content_type=content_type)
    assert response.status_code == 429, response.content
    assert response.json()["error"]["code"] == "rate_limit_exceeded"
    assert response["X-RateLimit-Remaining"] == "0"


def test_empty_write_bucket_refuses_a_bad_body_before_reading_it(workspace, make_client):
    # The same rule for every bucket that takes a body.
    client = make_client(workspace, rate_limit_write=1)
    assert client.post("/v1/customers", "{bad", content_type="application/json").status_code == 400
    for path in ("/v1/customers", "/v1/webhooks", "/v1/integrations"):
        response = client.post(path, "{bad", content_type="application/json")
        assert response.status_code == 429, (path, response.content)


def test_a_batch_costs_its_size_including_the_first_unit(client, acme):
    response = post_events(client, [{"customer_id": acme.id, "type": "x"}] * 3)
    assert response["X-RateLimit-Remaining"] == "9997"


def test_reads_use_the_read_bucket(client):
    response = client.get("/v1/events")
    assert response["X-RateLimit-Resource"] == "read"
