"""The transactional outbox: a broker outage loses nothing, the sweeper queues what is due, and
a message is claimed by exactly one worker."""

from __future__ import annotations

import threading
from contextlib import contextmanager
from datetime import timedelta

import psycopg
import pytest
from django.db import connection, transaction
from django.utils import timezone

from perly.celery import app as celery_app
from tests.support.worker import Worker, wait_for
from tests.webhooks.conftest import verify
from tests.webhooks.receiver import Reply
from webhooks import client as webhook_client
from webhooks.delivery import REQUEUE_AFTER, webhook_message_deliver, webhook_messages_sweep
from webhooks.models import WebhookEndpoint, WebhookMessage


@contextmanager
def unreachable_broker():
    """Point this process's Celery publisher at a port nothing listens on, then restore it.
    (The shared Redis server keeps running: other suites use it.)"""

    def reset_pools():
        celery_app._pool = None
        celery_app.amqp._producer_pool = None

    previous = celery_app.conf.broker_url
    celery_app.conf.broker_url = "redis://127.0.0.1:1/0"
    reset_pools()
    try:
        yield
    finally:
        celery_app.conf.broker_url = previous
        reset_pools()


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_outbox_survives_the_broker_being_down(client, receiver, make_endpoint, broker_mode, caplog):
    endpoint = make_endpoint(receiver.url())
    with unreachable_broker():
        response = client.post("/v1/customers", {"name": "Initech"})
    assert response.status_code == 201  # the API call succeeds; delivery is only postponed
    message = WebhookMessage.objects.get()
    assert (message.status, message.enqueued_at) == ("pending", None)
    assert "could not queue 1 webhook deliveries" in caplog.text

    worker = Worker(beat=True).start()  # beat runs the sweeper every 10 s
    try:
        (request,) = wait_for(receiver.received, timeout=45, message="the swept delivery")
        wait_for(lambda: WebhookMessage.objects.get().status == "delivered", timeout=10)
    finally:
        worker.stop()
    event = verify(endpoint["secret"], request)
    assert (event["id"], event["data"]["object"]["id"]) == (message.id, response.json()["id"])


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_end_to_end_delivery_and_retry_through_a_real_worker(
    client, receiver, make_endpoint, celery_worker_process
):
    endpoint = make_endpoint(receiver.url())
    receiver.script("/hook", Reply(503), Reply(200))
    customer = client.post("/v1/customers", {"name": "Initech"}).json()
    # The first attempt gets 503; the 5 s retry goes back to the broker as a countdown.
    first, second = wait_for(lambda: len(receiver.received()) >= 2 and receiver.received(), timeout=30)
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    assert verify(endpoint["secret"], second)["data"]["object"]["id"] == customer["id"]
    assert 4 <= second.at - first.at <= 8
    wait_for(lambda: WebhookMessage.objects.get().status == "delivered", timeout=10)


@pytest.mark.django_db
def test_sweeper_queues_due_messages_nobody_queued(
    publish, receiver, endpoint, django_capture_on_commit_callbacks
):
    receiver.script("/hook", Reply(500), Reply(200))
    publish("post", "/v1/customers", {"name": "Initech"})
    message = WebhookMessage.objects.get()
    # A long retry's delay is over: nothing is queued for it, the database knows it is due.
    WebhookMessage.objects.filter(pk=message.pk).update(next_attempt_at=timezone.now(), enqueued_at=None)
    with django_capture_on_commit_callbacks(execute=True):
        assert webhook_messages_sweep() == 1
    message.refresh_from_db()
    assert (message.status, message.attempt_count) == ("delivered", 2)
    assert webhook_messages_sweep() == 0


@pytest.mark.django_db
def test_sweeper_leaves_queued_and_future_messages_alone(publish, receiver, endpoint):
    receiver.script("/hook", Reply(500))
    publish("post", "/v1/customers", {"name": "Initech"})
    message = WebhookMessage.objects.get()
    now = timezone.now()
    WebhookMessage.objects.filter(pk=message.pk).update(next_attempt_at=now, enqueued_at=now)
    assert webhook_messages_sweep() == 0  # its task is in the queue
    WebhookMessage.objects.filter(pk=message.pk).update(
        next_attempt_at=now + timedelta(hours=2), enqueued_at=None
    )
    assert webhook_messages_sweep() == 0  # not due yet
    # A task queued long ago that never ran (a worker died with it) is queued again.
    stale = now - REQUEUE_AFTER - timedelta(seconds=1)
    WebhookMessage.objects.filter(pk=message.pk).update(next_attempt_at=stale, enqueued_at=stale)
    assert webhook_messages_sweep() == 1


def _hold_row_lock(message_id: str, locked: threading.Event, release: threading.Event) -> None:
    try:
        with transaction.atomic():
            list(WebhookMessage.objects.select_for_update().filter(pk=message_id))
            locked.set()
            release.wait(10)
    finally:
        connection.close()


@pytest.mark.django_db(transaction=True)
def test_a_locked_message_is_skipped_not_waited_for(client, receiver, make_endpoint, broker_mode):
    make_endpoint(receiver.url())
    with unreachable_broker():
        client.post("/v1/customers", {"name": "Initech"})
    message = WebhookMessage.objects.get()
    locked, release = threading.Event(), threading.Event()
    holder = threading.Thread(target=_hold_row_lock, args=(message.pk, locked, release))
    holder.start()
    try:
        locked.wait(10)
        assert webhook_messages_sweep() == 0
        assert webhook_message_deliver(message_id=message.pk).startswith("skipped")
    finally:
        release.set()
        holder.join()
    assert receiver.received() == []


@pytest.mark.django_db(transaction=True)
def test_two_workers_racing_for_one_message_send_it_once(client, receiver, make_endpoint, broker_mode):
    make_endpoint(receiver.url())
    receiver.script("/hook", Reply(200, delay=0.5))
    with unreachable_broker():
        client.post("/v1/customers", {"name": "Initech"})
    message_id = WebhookMessage.objects.get().pk
    outcomes: list[str] = []
    start = threading.Barrier(2)

    def work():
        try:
            start.wait()
            outcomes.append(webhook_message_deliver(message_id=message_id))
        finally:
            connection.close()

    threads = [threading.Thread(target=work) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(o.split(" ")[0] for o in outcomes) == ["delivered", "skipped:"]
    assert len(receiver.received()) == 1


def _connection_idle() -> bool:
    return connection.connection.info.transaction_status == psycopg.pq.TransactionStatus.IDLE


@pytest.mark.django_db(transaction=True)
def test_an_attempt_outside_any_transaction_commits_attempt_message_and_endpoint_together(
    client, receiver, make_endpoint, broker_mode
):
    """As in a worker (no atomic block): the record stores attempt, message and endpoint state,
    and the follow-ups (queueing the 5 s retry) run after it."""
    endpoint = make_endpoint(receiver.url())
    receiver.script("/hook", Reply(500, b"oops"))
    with unreachable_broker():
        client.post("/v1/customers", {"name": "Initech"})
    message_id = WebhookMessage.objects.get().pk
    assert not connection.in_atomic_block
    with unreachable_broker():  # the retry's countdown task cannot be queued: the sweeper will
        assert webhook_message_deliver(message_id=message_id) == "retrying (attempt 1, HTTP 500)"
    assert _connection_idle()
    message = WebhookMessage.objects.get(pk=message_id)
    assert (message.status, message.attempt_count, message.retry_step, message.locked_until) == (
        "pending",
        1,
        1,
        None,
    )
    assert message.enqueued_at is None  # marked for the sweeper after the failed enqueue
    (attempt,) = message.attempts.all()
    assert (attempt.outcome, attempt.status_code, attempt.response_body, attempt.error) == (
        "retrying",
        500,
        "oops",
        "HTTP 500",
    )
    assert WebhookEndpoint.objects.get(pk=endpoint["id"]).failing_since is not None


@pytest.mark.django_db(transaction=True)
def test_an_interrupted_attempt_gives_the_message_back_at_once(
    client, receiver, make_endpoint, broker_mode, monkeypatch
):
    make_endpoint(receiver.url())
    with unreachable_broker():
        client.post("/v1/customers", {"name": "Initech"})
    message_id = WebhookMessage.objects.get().pk

    def interrupted(*args, **kwargs):
        raise RuntimeError("interrupted mid-attempt")  # e.g. a soft time limit

    monkeypatch.setattr(webhook_client, "post", interrupted)
    with pytest.raises(RuntimeError):
        webhook_message_deliver(message_id=message_id)
    assert _connection_idle()
    message = WebhookMessage.objects.get(pk=message_id)
    assert (message.status, message.attempt_count, message.attempts.count(), message.locked_until) == (
        "pending",
        0,
        0,
        None,
    )
    monkeypatch.undo()
    assert webhook_message_deliver(message_id=message_id).startswith("delivered")
    assert len(receiver.received()) == 1


@pytest.mark.django_db(transaction=True)
def test_the_post_runs_with_no_transaction_open(client, receiver, make_endpoint, broker_mode, monkeypatch):
    """No row lock or open transaction is held through an HTTP call of up to 15 s: the claim is
    a lease, committed before the POST."""
    make_endpoint(receiver.url())
    with unreachable_broker():
        client.post("/v1/customers", {"name": "Initech"})
    message_id = WebhookMessage.objects.get().pk
    seen: list[tuple] = []
    real_post = webhook_client.post

    def observed_post(*args, **kwargs):
        idle = _connection_idle()
        leased = WebhookMessage.objects.get(pk=message_id).locked_until is not None
        seen.append((idle, connection.in_atomic_block, leased))
        return real_post(*args, **kwargs)

    monkeypatch.setattr(webhook_client, "post", observed_post)
    assert webhook_message_deliver(message_id=message_id).startswith("delivered")
    assert seen == [(True, False, True)]


@pytest.mark.django_db(transaction=True)
def test_a_killed_workers_claim_expires_with_its_lease(client, receiver, make_endpoint, broker_mode):
    make_endpoint(receiver.url())
    with unreachable_broker():
        client.post("/v1/customers", {"name": "Initech"})
    message = WebhookMessage.objects.get()
    now = timezone.now()
    # A worker claimed it and died before recording anything.
    WebhookMessage.objects.filter(pk=message.pk).update(locked_until=now + timedelta(seconds=60))
    assert webhook_message_deliver(message_id=message.pk).startswith("skipped")
    assert webhook_messages_sweep() == 0
    WebhookMessage.objects.filter(pk=message.pk).update(
        locked_until=now - timedelta(seconds=1), enqueued_at=None
    )
    assert webhook_messages_sweep() == 1  # queued on the broker (no worker runs it here)
    assert webhook_message_deliver(message_id=message.pk).startswith("delivered")
    assert len(receiver.received()) == 1


@pytest.mark.django_db(transaction=True)
def test_a_worker_whose_lease_was_taken_over_does_not_overwrite_the_new_owner(
    client, receiver, make_endpoint, broker_mode, monkeypatch
):
    """At-least-once: a worker slower than its lease still delivers, but the message's state is
    the one written by the worker that holds the current lease."""
    make_endpoint(receiver.url())
    receiver.script("/hook", Reply(500))
    with unreachable_broker():
        client.post("/v1/customers", {"name": "Initech"})
    message_id = WebhookMessage.objects.get().pk
    real_post = webhook_client.post
    new_lease = timezone.now() + timedelta(minutes=9)

    def slower_than_its_lease(*args, **kwargs):
        # Meanwhile its lease ran out and another worker claimed the message.
        WebhookMessage.objects.filter(pk=message_id).update(locked_until=new_lease)
        return real_post(*args, **kwargs)

    monkeypatch.setattr(webhook_client, "post", slower_than_its_lease)
    with unreachable_broker():
        assert webhook_message_deliver(message_id=message_id).startswith("retrying")
    message = WebhookMessage.objects.get(pk=message_id)
    assert (message.attempt_count, message.retry_step, message.locked_until) == (0, 0, new_lease)
    assert message.attempts.count() == 1  # the attempt itself is still on record
