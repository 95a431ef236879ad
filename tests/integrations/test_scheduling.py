"""Beat scheduling, the atomic claim, the stale-run reaper, and disconnect during a sync."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from integrations import services, sync
from integrations.models import Integration, SyncedRecord, SyncRun
from tests.integrations.conftest import STRIPE_KEY, connect
from tests.integrations.helpers import cursor
from tests.support.worker import Worker, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def _seed(fake, count):
    for i in range(count):
        fake.add_customer(email=f"ap@s{i}.example.com", name=f"S{i}")


def test_due_integrations_get_a_scheduled_run(client, fake_stripe, connect_stripe):
    due = connect_stripe()
    Integration.objects.filter(pk=due["id"]).update(next_sync_at=timezone.now() - timedelta(minutes=1))

    assert services.integrations_enqueue_due() == 1

    body = client.get(f"/v1/integrations/{due['id']}").json()
    assert [r["trigger"] for r in body["sync_history"]] == ["scheduled", "initial"]
    assert body["last_sync"]["status"] == "succeeded"
    assert services.integrations_enqueue_due() == 0  # next_sync_at moved an interval ahead


def test_disconnected_and_needs_reauth_integrations_are_not_scheduled(client, fake_stripe, connect_stripe):
    integration = connect_stripe()
    past = timezone.now() - timedelta(minutes=1)
    Integration.objects.filter(pk=integration["id"]).update(status="needs_reauth", next_sync_at=past)
    assert services.integrations_enqueue_due() == 0
    Integration.objects.filter(pk=integration["id"]).update(status="disconnected", next_sync_at=past)
    assert services.integrations_enqueue_due() == 0


def test_only_one_worker_claims_a_run(client, connect_stripe, broker_mode):
    run_id = connect_stripe()["last_sync"]["id"]  # stays queued: nothing consumes the broker
    barrier = threading.Barrier(4)
    results = []

    def claim():
        barrier.wait()
        results.append(sync.claim(run_id))
        connection.close()

    threads = [threading.Thread(target=claim) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)

    assert sorted(results) == [False, False, False, True]
    assert sync.execute(run_id) == "not claimed"


def test_a_run_whose_worker_died_is_reaped_and_the_next_run_resumes(client, fake_stripe, connect_stripe):
    _seed(fake_stripe, 150)
    fake_stripe.fail(500, "/v1/customers", skip=2, times=6)
    integration = connect_stripe()
    # Pretend the worker died mid-run after the first page: running, heartbeat long ago.
    SyncRun.objects.filter(pk=integration["last_sync"]["id"]).update(
        status="running", finished_at=None, heartbeat_at=timezone.now() - timedelta(hours=1)
    )

    assert services.sync_runs_reap_stale() == (1, 0)

    run = client.get(f"/v1/integrations/{integration['id']}").json()["last_sync"]
    assert run["status"] == "failed"
    assert "stopped responding" in run["error"]
    assert Integration.objects.get(pk=integration["id"]).status in ("error", "active")
    Integration.objects.filter(pk=integration["id"]).update(next_sync_at=timezone.now())
    assert services.integrations_enqueue_due() == 1
    assert cursor(integration["id"], "customers")["starting_after"] is None  # resumed and finished
    assert SyncedRecord.objects.filter(integration_id=integration["id"], stream="customers").count() == 150


def test_disconnect_stops_a_running_sync_at_its_next_page(client, fake_stripe, broker_mode):
    _seed(fake_stripe, 500)
    integration = connect(client, "stripe", {"api_key": STRIPE_KEY}).json()
    run_id = integration["last_sync"]["id"]
    fake_stripe.slow("/v1/customers", 0.3)
    outcome = []

    def work():
        outcome.append(sync.execute(run_id))
        connection.close()

    worker = threading.Thread(target=work)
    worker.start()
    wait_for(lambda: SyncRun.objects.get(pk=run_id).stats.get("records_read", 0) >= 100, timeout=20)
    assert client.delete(f"/v1/integrations/{integration['id']}").status_code == 200
    requests_at_disconnect = len(fake_stripe.requests_to("/v1/customers"))
    worker.join(20)

    assert outcome == ["cancelled"]
    run = SyncRun.objects.get(pk=run_id)
    assert run.status == "failed"
    assert run.error == "The integration was disconnected; the sync stopped."
    stored = SyncedRecord.objects.filter(integration_id=integration["id"]).count()
    assert stored < 500
    assert stored == run.stats["records_read"]  # the page in flight was dropped, not written
    assert len(fake_stripe.requests_to("/v1/customers")) <= requests_at_disconnect + 1
    assert Integration.objects.get(pk=integration["id"]).status == "disconnected"


@pytest.mark.worker
def test_beat_picks_up_a_due_integration(client, fake_stripe, broker_mode):
    from perly.redis_client import get_redis

    get_redis().flushdb()
    _seed(fake_stripe, 3)
    worker = Worker(beat=True, extra_env={"INTEGRATIONS_SCHEDULER_SECONDS": "1"}).start()
    try:
        integration = connect(client, "stripe", {"api_key": STRIPE_KEY}, sync_interval_minutes=15).json()
        wait_for(
            lambda: SyncRun.objects.filter(integration_id=integration["id"], status="succeeded").exists(),
            timeout=30,
            message="the initial sync on the worker",
        )
        Integration.objects.filter(pk=integration["id"]).update(next_sync_at=timezone.now())

        wait_for(
            lambda: SyncRun.objects.filter(
                integration_id=integration["id"], trigger="scheduled", status="succeeded"
            ).exists(),
            timeout=30,
            message="beat to enqueue and the worker to run a scheduled sync",
        )
    finally:
        worker.stop()
    assert Integration.objects.get(pk=integration["id"]).next_sync_at > timezone.now() + timedelta(minutes=14)
