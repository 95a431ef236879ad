"""Idempotency-Key on POST: replay, mismatch, concurrent in-flight, per-workspace scope."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection, connections, transaction
from django.utils import timezone
from rest_framework.test import APIClient

from customers.models import Customer
from perly.models import IdempotencyRecord
from tests.platform.helpers import assert_error
from tests.support.worker import wait_for


def test_replay_returns_the_first_response_and_does_nothing(client):
    first = client.post("/v1/customers", {"name": "A"}, HTTP_IDEMPOTENCY_KEY="k1")
    again = client.post("/v1/customers", {"name": "A"}, HTTP_IDEMPOTENCY_KEY="k1")
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first
    assert again["Request-Id"] != first["Request-Id"]
    assert Customer.objects.count() == 1


def test_replay_includes_validation_errors(client):
    first = client.post("/v1/customers", {"email": "bad"}, HTTP_IDEMPOTENCY_KEY="k1")
    again = client.post("/v1/customers", {"email": "bad"}, HTTP_IDEMPOTENCY_KEY="k1")
    assert first.status_code == again.status_code == 400
    assert again.json() == first.json()


def test_same_key_different_body_is_400(client):
    client.post("/v1/customers", {"name": "A"}, HTTP_IDEMPOTENCY_KEY="k1")
    response = client.post("/v1/customers", {"name": "B"}, HTTP_IDEMPOTENCY_KEY="k1")
    assert_error(
        response,
        400,
        "invalid_request_error",
        "idempotency_error",
        "This Idempotency-Key was already used with a different request body or path. "
        "Use a new key for a different request.",
        param="Idempotency-Key",
    )
    assert list(Customer.objects.values_list("name", flat=True)) == ["A"]


def test_keys_are_scoped_per_workspace(client, other_client):
    client.post("/v1/customers", {"name": "A"}, HTTP_IDEMPOTENCY_KEY="shared")
    response = other_client.post("/v1/customers", {"name": "A"}, HTTP_IDEMPOTENCY_KEY="shared")
    assert response.status_code == 201
    assert "Idempotent-Replayed" not in response
    assert Customer.objects.count() == 2


def test_different_keys_create_twice(client):
    client.post("/v1/customers", {"name": "A"}, HTTP_IDEMPOTENCY_KEY="k1")
    client.post("/v1/customers", {"name": "A"}, HTTP_IDEMPOTENCY_KEY="k2")
    assert Customer.objects.count() == 2


def test_key_longer_than_255_is_400(client):
    response = client.post("/v1/customers", {"name": "A"}, HTTP_IDEMPOTENCY_KEY="k" * 256)
    assert_error(
        response,
        400,
        "invalid_request_error",
        "parameter_invalid",
        "The Idempotency-Key header must be 1 to 255 characters.",
        param="Idempotency-Key",
    )
    assert Customer.objects.count() == 0


def test_a_key_older_than_24_hours_runs_again(client):
    client.post("/v1/customers", {"name": "A"}, HTTP_IDEMPOTENCY_KEY="k1")
    IdempotencyRecord.objects.update(created_at=timezone.now() - timedelta(hours=25))
    response = client.post("/v1/customers", {"name": "A"}, HTTP_IDEMPOTENCY_KEY="k1")
    assert response.status_code == 201
    assert "Idempotent-Replayed" not in response
    assert Customer.objects.count() == 2


def test_a_rate_limited_answer_is_not_stored(workspace, make_client):
    client = make_client(workspace, rate_limit_write=1)
    client.post("/v1/customers", {"name": "A"})
    limited = client.post("/v1/customers", {"name": "B"}, HTTP_IDEMPOTENCY_KEY="k1")
    assert limited.status_code == 429
    assert not IdempotencyRecord.objects.filter(key="k1").exists()


@pytest.mark.django_db(transaction=True)
def test_concurrent_request_with_the_same_key_is_409(workspace, make_client):
    """The first request is held inside the view (its insert waits on a row lock held here);
    a second request with the same key, from another thread, gets 409 at once."""
    client = make_client(workspace)
    results: dict[str, object] = {}

    def first_request():
        try:
            results["first"] = client.post(
                "/v1/customers", {"name": "A", "external_id": "held"}, HTTP_IDEMPOTENCY_KEY="k1"
            )
        finally:
            connections.close_all()

    blocker = threading.Event()
    released = threading.Event()

    def hold_external_id():
        # An uncommitted customer with the same external_id makes the first request's INSERT wait.
        try:
            with transaction.atomic():
                Customer.objects.create(workspace=workspace, name="holder", external_id="held")
                blocker.set()
                released.wait(30)
                transaction.set_rollback(True)
        finally:
            connections.close_all()

    holder = threading.Thread(target=hold_external_id)
    holder.start()
    assert blocker.wait(10)
    worker = threading.Thread(target=first_request)
    worker.start()
    try:
        wait_for(lambda: IdempotencyRecord.objects.filter(key="k1").exists(), timeout=10)
        second = APIClient()
        second.credentials(HTTP_AUTHORIZATION=f"Bearer {client.secret}")
        response = second.post(
            "/v1/customers", {"name": "A", "external_id": "held"}, HTTP_IDEMPOTENCY_KEY="k1"
        )
        assert_error(
            response,
            409,
            "invalid_request_error",
            "idempotency_key_in_use",
            "A request with this Idempotency-Key is still in progress. Retry after it completes.",
            param="Idempotency-Key",
        )
        assert worker.is_alive()
    finally:
        released.set()
        holder.join(10)
        worker.join(30)
    assert results["first"].status_code == 201
    replay = client.post("/v1/customers", {"name": "A", "external_id": "held"}, HTTP_IDEMPOTENCY_KEY="k1")
    assert replay.status_code == 201
    assert replay["Idempotent-Replayed"] == "true"
    assert replay.json() == results["first"].json()
    assert Customer.objects.count() == 1
    connection.close()


def test_stored_first_responses_are_encrypted_at_rest(client):
    """A replayable response can carry a secret shown once (a webhook endpoint's whsec_)."""
    response = client.post("/v1/customers", {"name": "Secretive Ltd"}, HTTP_IDEMPOTENCY_KEY="k-enc")
    assert response.status_code == 201
    stored = bytes(IdempotencyRecord.objects.get(key="k-enc").response_body)
    assert b"Secretive Ltd" not in stored
    replay = client.post("/v1/customers", {"name": "Secretive Ltd"}, HTTP_IDEMPOTENCY_KEY="k-enc")
    assert replay.json() == response.json()


def test_records_past_24_hours_are_pruned(client):
    from perly.services import idempotency_records_prune

    client.post("/v1/customers", {"name": "Old"}, HTTP_IDEMPOTENCY_KEY="old")
    client.post("/v1/customers", {"name": "New"}, HTTP_IDEMPOTENCY_KEY="new")
    IdempotencyRecord.objects.filter(key="old").update(created_at=timezone.now() - timedelta(hours=25))
    assert idempotency_records_prune() == 1
    assert list(IdempotencyRecord.objects.values_list("key", flat=True)) == ["new"]


def test_a_key_without_the_write_scope_gets_a_403_not_the_replay(client, workspace, make_client):
    """Another key of the workspace lacking `customers:write` must not read the first response."""
    first = client.post("/v1/customers", {"name": "A"}, HTTP_IDEMPOTENCY_KEY="k1")
    assert first.status_code == 201
    reader = make_client(workspace, scopes="read")
    response = reader.post("/v1/customers", {"name": "A"}, HTTP_IDEMPOTENCY_KEY="k1")
    assert_error(
        response,
        403,
        "permission_error",
        "insufficient_permissions",
        "This API key does not have the 'customers:write' scope.",
    )
    assert "Idempotent-Replayed" not in response
    assert Customer.objects.count() == 1
