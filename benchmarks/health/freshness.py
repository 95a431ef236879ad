"""Freshness under ingestion load: time from a committed batch to its customers' new health.

4 threads ingest 1,000-event batches through events.services.event_batch_ingest (the POST
/v1/events service path, without HTTP) while a real Celery worker with beat drains the dirty
marks. For a sample of each batch's customers, latency = the time a poll (every 50 ms) first sees
a score computed after the batch committed, minus the commit time.

Usage: .venv/bin/python benchmarks/health/freshness.py [--batches 40] [--customers 10000]
Needs PostgreSQL and Redis on 127.0.0.1 (REDIS_URL db 3 by default; it is flushed).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from benchmarks.support import admin_sql  # noqa: E402

parser = argparse.ArgumentParser()
parser.add_argument("--batches", type=int, default=40)
parser.add_argument("--customers", type=int, default=10_000)
parser.add_argument("--threads", type=int, default=4)
parser.add_argument("--db", default="perly_health_fresh")
parser.add_argument("--pg", default="postgres://postgres@127.0.0.1:5432")
parser.add_argument("--redis", default="redis://127.0.0.1:6379/3")
ARGS = parser.parse_args()
os.environ.update(
    DATABASE_URL=f"{ARGS.pg}/{ARGS.db}",
    REDIS_URL=ARGS.redis,
    DJANGO_SETTINGS_MODULE="perly.settings",
    SECRET_KEY=os.environ.get("SECRET_KEY", "bench-only-secret-key-0123456789abcdef"),
    DEBUG="false",
)


def main() -> None:
    admin_sql(ARGS.pg, f"DROP DATABASE IF EXISTS {ARGS.db}")
    admin_sql(ARGS.pg, f"CREATE DATABASE {ARGS.db}")
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, check=True)
    import django

    django.setup()
    from django.db import connection
    from django.utils import timezone

    from customers.models import Customer
    from events.services import event_batch_ingest
    from perly.redis_client import get_redis
    from perly.services import workspace_create

    get_redis().flushdb()
    ws = workspace_create(slug="fresh", name="fresh")
    Customer.objects.bulk_create(
        [Customer(workspace_id=ws.id, name=f"C{i}") for i in range(ARGS.customers)], batch_size=5000
    )
    ids = list(Customer.objects.filter(workspace_id=ws.id).values_list("id", flat=True))
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "perly",
            "worker",
            "-B",
            "-l",
            "warning",
            "--concurrency",
            "2",
            "--schedule",
            "/tmp/perly-fresh-beat",
            "-Q",
            "default,ingest,health,webhooks,syncs",
        ],
        cwd=ROOT,
        start_new_session=True,
    )
    pending: list[tuple[str, float]] = []  # (customer id, batch commit time as epoch seconds)
    lock = threading.Lock()
    latencies: list[float] = []
    batches_left = list(range(ARGS.batches))

    def ingest() -> None:
        rng = random.Random()
        while True:
            with lock:
                if not batches_left:
                    break
                batches_left.pop()
            chosen = rng.sample(ids, 200)
            events = [
                {"customer_id": chosen[n % 200], "type": f"t{n % 7}", "properties": {"user_id": f"u{n % 4}"}}
                for n in range(1000)
            ]
            event_batch_ingest(workspace_id=ws.id, events=events)
            committed = time.time()
            with lock:
                pending.extend((customer_id, committed) for customer_id in rng.sample(chosen, 5))
        connection.close()

    time.sleep(5)  # the worker boots (bounded, one-off; not part of the measurement)
    started = time.perf_counter()
    threads = [threading.Thread(target=ingest) for _ in range(ARGS.threads)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        with lock:
            waiting = list(pending)
        if waiting:
            computed = dict(
                Customer.objects.filter(pk__in={c for c, _ in waiting}).values_list(
                    "id", "health_computed_at"
                )
            )
            done = []
            observed = time.time()  # when a client would see it (the rescore has committed)
            for customer_id, committed in waiting:
                at = computed.get(customer_id)
                if at is not None and at.timestamp() >= committed:
                    latencies.append(observed - committed)
                    done.append((customer_id, committed))
            with lock:
                for item in done:
                    pending.remove(item)
        if not any(t.is_alive() for t in threads) and not pending:
            break
        time.sleep(0.05)
    elapsed = time.perf_counter() - started
    os.killpg(worker.pid, 15)
    worker.wait(timeout=30)
    latencies.sort()
    events = ARGS.batches * 1000
    print(
        f"{events:,} events in {elapsed:.1f}s ({events / elapsed:,.0f} events/s incl. drain), "
        f"{len(latencies)} samples, {len(pending)} never refreshed within 180 s"
    )
    if latencies:
        p95 = latencies[max(0, int(len(latencies) * 0.95) - 1)]
        print(f"freshness: p50 {statistics.median(latencies):.2f}s, p95 {p95:.2f}s, max {latencies[-1]:.2f}s")
    print(f"at {timezone.now():%Y-%m-%d %H:%M}Z")
    connection.close()
    admin_sql(ARGS.pg, f"DROP DATABASE IF EXISTS {ARGS.db}")


if __name__ == "__main__":
    main()
