"""Ingestion marks customers dirty; health follows, eagerly or through a real worker."""

from __future__ import annotations

import json

import pytest
import redis
from django.test import override_settings
from django.utils import timezone

from customers.models import Customer
from events.hooks import notify_events_ingested
from health import dirty
from health.models import CustomerHealth, DirtyCustomer
from health.services import rescore_dirty_drain
from health.tasks import rescore_dirty
from perly.celery import app as celery_app
from perly.redis_client import reset_redis
from tests.support.worker import wait_for


def _post_events(client, customer_id: str, count: int = 3):
    events = [
        {"customer_id": customer_id, "type": f"t{n % 5}", "properties": {"user_id": f"u{n % 3}"}}
        for n in range(count)
    ]
    response = client.post("/v1/events", {"events": events}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["accepted"] == count


def _queued_health_tasks() -> list[str]:
    """The task names waiting in the real broker's "health" queue (a Redis list, oldest last)."""
    broker = redis.Redis.from_url(celery_app.conf.broker_url)
    try:
        return [json.loads(raw)["headers"]["task"] for raw in broker.lrange("health", 0, -1)]
    finally:
        broker.close()


def test_eager_ingestion_rescores_right_after_the_batch(client, make_customer):
    customer = make_customer()
    _post_events(client, customer.id, count=10)
    customer.refresh_from_db()
    assert customer.health_score is not None  # scored within the request
    assert (
        customer.health_status == "healthy"
    )  # new, broad, multi-user: 1 active day is not enough to sink it
    health = client.get(f"/v1/customers/{customer.id}/health").json()
    assert {s["key"] for s in health["signals"]} >= {"usage.active_days_30d", "engagement.distinct_users_30d"}


def test_with_a_broker_marks_go_to_a_redis_set_and_one_task_is_queued(broker_mode, make_customer):
    customer = make_customer()
    other = make_customer()
    notify_events_ingested(customer.workspace_id, {customer.id})
    notify_events_ingested(customer.workspace_id, {other.id})
    assert _queued_health_tasks() == ["health.tasks.rescore_dirty"]  # debounced: two batches, one task
    assert sorted(m for _, ids in dirty.pop_dirty() for m in ids) == sorted([customer.id, other.id])
    assert not CustomerHealth.objects.exists()  # nothing scored until a worker takes the task

    # A drain reopens the slot as it starts, so marks that arrive during it queue the next drain.
    rescore_dirty()
    notify_events_ingested(customer.workspace_id, {customer.id})
    assert _queued_health_tasks() == ["health.tasks.rescore_dirty"] * 2


@pytest.fixture
def redis_unreachable():
    """REDIS_URL points at a port nothing listens on (the shared Redis server keeps running for
    the other suites); the cached client is rebuilt on the way in and out."""
    reset_redis()
    try:
        with override_settings(REDIS_URL="redis://127.0.0.1:1/0"):
            yield
    finally:
        reset_redis()


def test_without_redis_marks_fall_back_to_the_database(broker_mode, redis_unreachable, make_customer, caplog):
    customer = make_customer()
    notify_events_ingested(customer.workspace_id, {customer.id})
    assert list(DirtyCustomer.objects.values_list("customer_id", flat=True)) == [customer.id]
    assert "Redis unavailable" in caplog.text
    # Without the debounce key every batch may schedule a drain (the broker here is still up).
    assert _queued_health_tasks() == ["health.tasks.rescore_dirty"]
    assert rescore_dirty_drain() == 1
    assert not DirtyCustomer.objects.exists()
    assert CustomerHealth.objects.filter(customer=customer).exists()
    # No events yet: scored as "unknown", but scored (the customer page shows when).
    assert Customer.objects.get(pk=customer.pk).health_computed_at is not None


def test_drain_rescores_in_batches_and_empties_the_marks(broker_mode, make_customer):
    customers = [make_customer() for _ in range(5)]
    dirty.mark_dirty(customers[0].workspace_id, [c.id for c in customers])
    assert rescore_dirty_drain(batch=2) == 5
    assert dirty.pop_dirty() == []
    assert CustomerHealth.objects.count() == 5


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_health_reflects_an_ingested_batch_with_a_real_worker(celery_worker_process, client, make_customer):
    customer = make_customer()
    started = timezone.now()
    _post_events(client, customer.id, count=5)

    def scored():
        return Customer.objects.filter(pk=customer.pk, health_computed_at__gte=started).exists()

    wait_for(scored, timeout=30, message="the worker to rescore the customer")
    assert Customer.objects.get(pk=customer.pk).health_score is not None
    assert dirty.pop_dirty() == []


def test_an_older_computation_never_overwrites_a_newer_one(make_customer):
    from datetime import timedelta

    from health.rescore import rescore
    from health.services import health_model_current

    customer = make_customer()
    model = health_model_current(workspace_id=customer.workspace_id)
    now = timezone.now()
    rescore(workspace_id=customer.workspace_id, model=model, customer_ids=[customer.id], as_of=now)
    # A slower concurrent drain that started a second earlier commits last.
    rescore(
        workspace_id=customer.workspace_id,
        model=model,
        customer_ids=[customer.id],
        as_of=now - timedelta(seconds=1),
    )
    assert CustomerHealth.objects.get(customer=customer).computed_at == now
    assert Customer.objects.get(pk=customer.pk).health_computed_at == now
