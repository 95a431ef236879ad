"""Webhook delivery throughput: Perly (2 Celery worker processes) vs. a plain requests loop.

Both hit the same local receiver (tests/webhooks/receiver.py on 127.0.0.1) in the same run; the
plain loop is the floor, a `requests.Session` POSTing the same body back to back. Perly's figure
covers everything after the publishing transaction commits: queueing one task per message,
claiming the row, signing, the HTTP POST and recording the attempt.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/perly_webhooks REDIS_URL=redis://127.0.0.1:6379/4 \
        .venv/bin/python benchmarks/webhooks/bench.py --messages 2000
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "perly.settings")
os.environ.setdefault("SECRET_KEY", "benchmark-only-secret-key-0123456789abcdef")
os.environ["PERLY_WEBHOOK_ALLOW_PRIVATE_URLS"] = "true"
os.environ["CELERY_TASK_ALWAYS_EAGER"] = "false"

import django  # noqa: E402

django.setup()

import requests  # noqa: E402
from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import transaction  # noqa: E402

from perly.celery import app as celery_app  # noqa: E402
from perly.ids import new_id  # noqa: E402
from perly.redis_client import get_redis  # noqa: E402
from perly.services import workspace_create  # noqa: E402
from tests.support.worker import Worker, wait_for  # noqa: E402
from tests.webhooks.receiver import Receiver  # noqa: E402
from webhooks.models import MessageStatus, WebhookMessage  # noqa: E402
from webhooks.services import webhook_endpoint_create, webhook_event_publish  # noqa: E402

CUSTOMER = {
    "object": "customer",
    "name": "Initech Analytics",
    "email": "billing@initech.example.com",
    "domain": "initech.example.com",
    "external_id": "acct_1042",
    "plan": "growth",
    "owner": "maya@perly-demo.io",
    "lifecycle_stage": "active",
    "metadata": {"region": "emea", "seats": "42"},
    "health": {"score": 71.5, "status": "healthy", "computed_at": "2026-11-26T04:27:32Z"},
    "created_at": "2026-11-26T04:27:32Z",
    "updated_at": "2026-11-26T04:27:32Z",
}


def plain_loop(url: str, count: int, deadline: float) -> tuple[int, float]:
    body = b'{"id":"msg_x","object":"event","type":"customer.created","data":{}}'
    session = requests.Session()
    started = time.perf_counter()
    sent = 0
    while sent < count and time.perf_counter() < deadline:
        response = session.post(url, data=body, headers={"Content-Type": "application/json"}, timeout=15)
        response.raise_for_status()
        sent += 1
    return sent, time.perf_counter() - started


def perly_run(receiver: Receiver, path: str, count: int, timeout: float) -> tuple[int, float]:
    workspace = workspace_create(slug=f"bench-{new_id('b')[-10:]}", name="Webhook benchmark")
    webhook_endpoint_create(workspace_id=workspace.id, data={"url": receiver.url(path), "events": ["*"]})
    before = receiver.count()
    started = time.perf_counter()
    with transaction.atomic():
        for index in range(count):
            data = {**CUSTOMER, "id": f"cus_bench{index:06d}"}
            webhook_event_publish(workspace_id=workspace.id, event_type="customer.created", data_object=data)
        committed = time.perf_counter()
    # The on_commit hook has queued one task per message by now; the workers are already draining.
    wait_for(lambda: receiver.count() - before >= count, timeout=timeout, interval=0.02, message="deliveries")
    elapsed = time.perf_counter() - committed
    delivered = WebhookMessage.objects.filter(workspace_id=workspace.id, status=MessageStatus.DELIVERED)
    wait_for(lambda: delivered.count() == count, timeout=30, message="every row marked delivered")
    print(f"  publish transaction ({count} messages, not timed): {committed - started:.2f} s")
    return receiver.count() - before, elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=2, help="worker pool size (2 = two processes)")
    parser.add_argument("--timeout", type=float, default=180.0)
    args = parser.parse_args()
    if not settings.REDIS_URL:
        sys.exit("Set REDIS_URL (a Redis db of your own) and DATABASE_URL (PostgreSQL).")
    call_command("migrate", verbosity=0)
    get_redis().flushdb()

    with Receiver() as receiver:
        sent, seconds = plain_loop(receiver.url("/floor"), args.messages, time.perf_counter() + args.timeout)
        floor = sent / seconds
        print(f"plain requests loop: {sent} POSTs in {seconds:.2f} s = {floor:.0f}/s")

        worker = Worker(concurrency=args.concurrency).start()
        try:
            delivered, seconds = perly_run(receiver, "/perly", args.messages, args.timeout)
        finally:
            worker.stop()
        rate = delivered / seconds
        print(
            f"perly, {args.concurrency} worker processes: {delivered} deliveries in {seconds:.2f} s = {rate:.0f}/s"
        )
        print(f"ratio: {rate / floor:.0%} of the plain loop (target >= 60%)")
    celery_app.close()


if __name__ == "__main__":
    main()
