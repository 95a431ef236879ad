"""A Celery worker SIGKILLed in the middle of a webhook delivery and in the middle of a sync.

The worker dies with no chance to clean up: its task stays unacknowledged in Redis (redelivered
only after the broker's one-hour visibility timeout), a delivery's lease on its message stays
until it expires, and a sync's open transaction is rolled back when the connection drops. Recovery is the periodic jobs' work: the outbox sweeper
re-queues a message whose task has not finished 5 minutes after it was queued; the stale-run
reaper fails a run with no heartbeat for 15 minutes. The tests move those rows' clocks back
instead of waiting (the "time passes" lines); everything else is the real thing.
"""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone
from rest_framework.test import APIClient

from customers.models import Customer
from integrations import config, services
from integrations.models import StreamState, SyncedRecord, SyncRun
from tests.integrations.fakes.base import Request
from tests.integrations.fakes.stripe import FakeStripe
from tests.support.worker import wait_for
from tests.webhooks.conftest import verify
from tests.webhooks.receiver import Receiver
from webhooks import delivery
from webhooks.models import WebhookMessage

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(180), pytest.mark.worker]

STRIPE_KEY = "sk_test_4eC39HqLyjWDarjtT1zdp7dc"


class BlockingReceiver(Receiver):
    """Holds its first request until `release` is set; answers 200 at once afterwards."""

    def __init__(self) -> None:
        super().__init__()
        self.holding = threading.Event()
        self.release = threading.Event()
        self._first = True

    def _reply_for(self, path: str):
        with self._lock:
            first, self._first = self._first, False
        if first:
            self.holding.set()
            self.release.wait(60)
        return super()._reply_for(path)


class BlockingStripe(FakeStripe):
    """Fake Stripe that stops answering at the second page of /v1/customers, until released."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.holding = threading.Event()
        self.release = threading.Event()
        self._blocked_once = False

    def dispatch(self, request: Request):
        if request.path == "/v1/customers" and request.param("starting_after"):
            with self._lock:
                first, self._blocked_once = not self._blocked_once, True
            if first:
                self.holding.set()
                self.release.wait(60)
        return super().dispatch(request)


@pytest.fixture
def api(tenant):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {tenant[1]}")
    return client


def test_delivery_interrupted_by_sigkill_arrives_after_restart_with_the_same_id(start_worker, api):
    with BlockingReceiver() as receiver, override_settings(PERLY_WEBHOOK_ALLOW_PRIVATE_URLS=True):
        endpoint = api.post("/v1/webhooks", {"url": receiver.url(), "events": ["customer.created"]}).json()
        worker = start_worker()
        customer = api.post("/v1/customers", {"name": "Initech"}).json()
        assert receiver.holding.wait(30), "the worker never started the delivery"

        worker.kill()  # SIGKILL mid-request: no response recorded, no ack sent
        receiver.release.set()
        message = WebhookMessage.objects.get()
        # Nothing recorded; the dead worker's lease is still on the row, nobody can claim it yet.
        assert (message.status, message.attempt_count, message.attempts.count()) == ("pending", 0, 0)
        assert message.locked_until > timezone.now()

        start_worker(beat=True)  # beat runs the outbox sweeper every 10 s
        # Time passes: the dead worker's lease runs out, and the sweeper re-queues a task that
        # has not finished in 5 minutes.
        WebhookMessage.objects.filter(pk=message.pk).update(
            locked_until=timezone.now() - timedelta(seconds=1),
            enqueued_at=timezone.now() - delivery.REQUEUE_AFTER - timedelta(seconds=1),
        )
        wait_for(lambda: receiver.count() >= 2, timeout=60, message="the redelivery")

    first, second = receiver.received()[:2]
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == message.pk
    assert first.body == second.body  # the same message, freshly signed
    payload = verify(endpoint["secret"], second)
    assert payload["data"]["object"]["id"] == customer["id"]
    wait_for(lambda: WebhookMessage.objects.get(pk=message.pk).status == "delivered", timeout=10)
    assert WebhookMessage.objects.get(pk=message.pk).attempt_count == 1


def test_sync_interrupted_by_sigkill_is_reaped_and_resumes_from_its_checkpoint(start_worker, api):
    fake = BlockingStripe(api_keys=(STRIPE_KEY,)).start()
    for i in range(250):  # three pages of 100
        fake.add_customer(email=f"billing@c{i:03d}.example.com", name=f"C{i:03d}")
    try:
        with override_settings(STRIPE_API_BASE=fake.url):
            worker = start_worker()
            created = api.post(
                "/v1/integrations",
                {"provider": "stripe", "credentials": {"api_key": STRIPE_KEY}},
                format="json",
            )
            assert created.status_code == 201, created.content
            integration_id, first_run = created.json()["id"], created.json()["last_sync"]["id"]
            assert fake.holding.wait(30), "the sync never reached its second page"

            worker.kill()
            fake.release.set()
            checkpoint = StreamState.objects.get(integration_id=integration_id, stream="customers").cursor
            assert checkpoint["starting_after"]  # page 1 is committed, with its position
            assert SyncedRecord.objects.filter(integration_id=integration_id).count() == 100
            assert SyncRun.objects.get(pk=first_run).status == "running"  # and nobody is running it

            # The next worker runs beat, which looks for due syncs every second here.
            start_worker(beat=True, INTEGRATIONS_SCHEDULER_SECONDS="1")
            # Time passes: the run's last heartbeat is older than the stale-run limit.
            stale = timezone.now() - timedelta(seconds=config.stale_run_seconds() + 1)
            SyncRun.objects.filter(pk=first_run).update(heartbeat_at=stale)
            fake.clear_log()
            assert services.sync_runs_reap_stale() == (1, 0)  # what beat's reaper task runs

            dead = SyncRun.objects.get(pk=first_run)
            assert dead.status == "failed"
            assert dead.error.startswith("The worker running this sync stopped responding")
            next_run = wait_for(
                lambda: SyncRun.objects.filter(integration_id=integration_id, status="succeeded").first(),
                timeout=60,
                message="the scheduled run to pick the integration up and succeed",
            )
    finally:
        fake.release.set()
        fake.stop()

    assert next_run.trigger == "scheduled"
    pages = fake.requests_to("/v1/customers", "GET")
    # Resumed where the dead run stopped: page 1 was not read again.
    assert pages[0].param("starting_after") == checkpoint["starting_after"]
    assert len(pages) == 2
    assert next_run.stats["records_read"] >= 150
    assert SyncedRecord.objects.filter(integration_id=integration_id, stream="customers").count() == 250
    # No duplicates: every Stripe customer became exactly one Perly customer.
    assert Customer.objects.count() == 250
    assert Customer.objects.values("email").distinct().count() == 250
