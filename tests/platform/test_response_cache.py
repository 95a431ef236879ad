"""Retrieves served from the response cache: never stale after a write, never across workspaces or
scopes, rate-limited like any other read, and byte-identical to the uncached response."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from perly import response_cache
from perly.redis_client import get_redis

# Writes invalidate after commit, so these tests commit for real.
pytestmark = pytest.mark.django_db(transaction=True)


def _get(client, customer_id, **extra):
    return client.get(f"/v1/customers/{customer_id}", **extra)


def _queries(call):
    with CaptureQueriesContext(connection) as captured:
        response = call()
    return response, len(captured.captured_queries)


def test_a_repeated_retrieve_is_answered_without_the_database(client, customer):
    first, first_queries = _queries(lambda: _get(client, customer["id"]))
    second, second_queries = _queries(lambda: _get(client, customer["id"]))
    assert first_queries >= 1
    assert second_queries == 0
    assert second.content == first.content
    assert second.json() == customer
    for header in ("Content-Type", "Allow", "Vary", "X-Frame-Options"):
        assert second.get(header) == first.get(header), header
    assert second["Request-Id"] != first["Request-Id"]


def test_an_update_is_visible_on_the_next_read(client, customer):
    _get(client, customer["id"])
    assert client.patch(f"/v1/customers/{customer['id']}", {"plan": "enterprise"}).status_code == 200
    assert _get(client, customer["id"]).json()["plan"] == "enterprise"


def test_a_deleted_customer_is_404_at_once(client, customer):
    _get(client, customer["id"])
    assert client.delete(f"/v1/customers/{customer['id']}").status_code == 200
    assert _get(client, customer["id"]).status_code == 404


def test_a_rescore_is_visible_on_the_next_read(client, customer):
    assert _get(client, customer["id"]).json()["health"] is None
    events = [
        {"customer_id": customer["id"], "type": f"t{n}", "properties": {"user_id": "u1"}} for n in range(3)
    ]
    assert client.post("/v1/events", {"events": events}, format="json").status_code == 200
    health = _get(client, customer["id"]).json()["health"]
    assert health is not None and health["score"] is not None


def test_another_workspace_never_sees_a_cached_customer(client, other_client, customer):
    _get(client, customer["id"])
    response = _get(other_client, customer["id"])
    assert response.status_code == 404
    assert customer["name"] not in response.content.decode()


def test_a_key_without_the_read_scope_is_refused_even_when_cached(client, workspace, make_client, customer):
    _get(client, customer["id"])
    events_only = make_client(workspace, scopes="events:write")
    assert _get(events_only, customer["id"]).status_code == 403


def test_cached_reads_count_against_the_rate_limit(workspace, make_client, customer):
    limited = make_client(workspace, rate_limit_read=3)
    remaining = [_get(limited, customer["id"])["X-RateLimit-Remaining"] for _ in range(3)]
    assert remaining == ["2", "1", "0"]
    refused = _get(limited, customer["id"])
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "rate_limit_exceeded"


def test_requests_the_cache_cannot_answer_take_the_normal_path(client, customer):
    _get(client, customer["id"])
    assert _get(client, customer["id"], QUERY_STRING="expand=x").status_code == 400
    assert _get(client, customer["id"], HTTP_ACCEPT="text/html").status_code == 406
    assert client.head(f"/v1/customers/{customer['id']}").status_code == 200


def test_a_write_that_commits_while_a_read_is_in_flight_is_not_cached_over(client, customer, workspace):
    """The read took its generation before the write; what it stores is never served."""
    redis = get_redis()
    prefix = response_cache.entry_prefix(workspace.id, f"/v1/customers/{customer['id']}")
    _get(client, customer["id"])  # creates the generation and caches the old row
    stale_generation = redis.get(response_cache.generation_key(workspace.id)).decode()
    client.patch(f"/v1/customers/{customer['id']}", {"name": "Renamed"})
    # A slow reader that started before the PATCH stores the old body under the old generation.
    redis.set(prefix + stale_generation, redis.get(prefix + stale_generation) or b"", ex=60)
    assert _get(client, customer["id"]).json()["name"] == "Renamed"


def test_without_a_cache_ttl_nothing_is_cached(client, customer, settings):
    settings.PERLY_RETRIEVE_CACHE_SECONDS = 0
    _get(client, customer["id"])
    _, queries = _queries(lambda: _get(client, customer["id"]))
    assert queries >= 1


def test_a_lost_generation_starts_a_fresh_one(client, customer, workspace):
    _get(client, customer["id"])
    get_redis().delete(response_cache.generation_key(workspace.id))
    client.patch(f"/v1/customers/{customer['id']}", {"plan": "growth"})
    assert _get(client, customer["id"]).json()["plan"] == "growth"
