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
import signal
import subprocess
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

import orjson  # noqa: E402
import requests  # noqa: E402
from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import transaction  # noqa: E402

from benchmarks.support import cpu_seconds, cpu_used  # noqa: E402
from perly.celery import app as celery_app  # noqa: E402
from perly.ids import new_id  # noqa: E402
from perly.redis_client import get_redis  # noqa: E402
from perly.services import workspace_create  # noqa: E402
from tests.support.worker import ROOT as REPO  # noqa: E402
from tests.support.worker import wait_for, worker_env  # noqa: E402
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


def plain_loop(url: str, count: int, deadline: float, keep_alive: bool) -> tuple[int, float]:
    """`requests.post` per message (a new connection each time), or one `requests.Session`."""
    body = orjson.dumps({"id": "msg_x", "object": "event", "type": "customer.created", "data": CUSTOMER})
    post = requests.Session().post if keep_alive else requests.post
    started = time.perf_counter()
    sent = 0
    while sent < count and time.perf_counter() < deadline:
        response = post(url, data=body, headers={"Content-Type": "application/json"}, timeout=15)
        response.raise_for_status()
        sent += 1
    return sent, time.perf_counter() - started


def group_pids(pgid: int) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.getpgid(int(entry)) == pgid:
                    pids.append(int(entry))
            except OSError:
                pass
    return pids


def backend_pids() -> list[int]:
    """PostgreSQL backends connected to this benchmark's database (other suites' are not counted)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return [row[0] for row in cursor.fetchall()]


def cpu_snapshot(workers: list[subprocess.Popen]) -> dict[str, dict[int, float]]:
    """CPU seconds by process group: the Celery workers (main processes and pool children), their
    PostgreSQL backends, and this process (the receiver's threads and the publishing)."""
    return {
        "celery workers": {pid: cpu_seconds(pid) for w in workers for pid in group_pids(w.pid)},
        "their PostgreSQL backends": {pid: cpu_seconds(pid) for pid in backend_pids()},
        "this process (queueing, the receiver)": {os.getpid(): time.process_time()},
    }


def sessions_opened() -> int:
    """PostgreSQL sessions ever opened on this database (a new connection per task shows here)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT sessions FROM pg_stat_database WHERE datname = current_database()")
        return cursor.fetchone()[0]


def perly_run(
    receiver: Receiver, path: str, count: int, timeout: float, workers: list[subprocess.Popen]
) -> tuple[int, float]:
    workspace = workspace_create(slug=f"bench-{new_id('b')[-10:]}", name="Webhook benchmark")
    webhook_endpoint_create(workspace_id=workspace.id, data={"url": receiver.url(path), "events": ["*"]})
    before = receiver.count()
    started = time.perf_counter()
    with transaction.atomic():
        for index in range(count):
            data = {**CUSTOMER, "id": f"cus_bench{index:06d}"}
            webhook_event_publish(workspace_id=workspace.id, event_type="customer.created", data_object=data)
        committed = time.perf_counter()
        cpu_before = cpu_snapshot(workers)
        sessions_before = sessions_opened()
    # The on_commit hook has queued one task per message by now; the workers are already draining.
    wait_for(lambda: receiver.count() - before >= count, timeout=timeout, interval=0.02, message="deliveries")
    elapsed = time.perf_counter() - committed
    cpu = cpu_used(cpu_before, cpu_snapshot(workers))
    sessions = sessions_opened() - sessions_before
    load = os.getloadavg()[0]
    delivered = WebhookMessage.objects.filter(workspace_id=workspace.id, status=MessageStatus.DELIVERED)
    wait_for(lambda: delivered.count() == count, timeout=30, message="every row marked delivered")
    print(f"  publish transaction ({count} messages, not timed): {committed - started:.2f} s")
    print(f"  load average (1 min) at the end: {load:.2f}; PostgreSQL sessions opened meanwhile: {sessions}")
    print("  CPU per delivery: " + ", ".join(f"{group} {s / count * 1e6:.0f} us" for group, s in cpu.items()))
    return receiver.count() - before, elapsed


def start_worker(options: list[str], index: int) -> subprocess.Popen:
    command = [sys.executable, "-m", "celery", "-A", "perly", "worker", "-l", "warning", "-Q", "webhooks"]
    command += ["--without-gossip", "--without-mingle", "-n", f"bench{index}@%h", *options]
    return subprocess.Popen(command, cwd=REPO, env=worker_env(), start_new_session=True)


def workers_answering(count: int):
    return lambda: len(celery_app.control.ping(timeout=0.5)) >= count


def stop_worker(process: subprocess.Popen) -> None:
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=8, help="threads per worker process (second setup)")
    parser.add_argument("--timeout", type=float, default=180.0)
    parser.add_argument("--setups", choices=("all", "prefork", "threads", "solo"), default="all")
    parser.add_argument("--prefetch-multiplier", type=int, default=None, help="worker option, to compare")
    args = parser.parse_args()
    if not settings.REDIS_URL:
        sys.exit("Set REDIS_URL (a Redis db of your own) and DATABASE_URL (PostgreSQL).")
    call_command("migrate", verbosity=0)
    get_redis().flushdb()

    def measure_floors(receiver: Receiver) -> dict[str, float]:
        floors = {}
        for name, keep_alive in (("requests.post loop", False), ("requests.Session loop", True)):
            deadline = time.perf_counter() + args.timeout
            sent, seconds = plain_loop(receiver.url("/floor"), args.messages, deadline, keep_alive)
            floors[name] = sent / seconds
            print(f"floor, {name}: {sent} POSTs in {seconds:.2f} s = {floors[name]:.0f}/s")
        return floors

    with Receiver() as receiver:
        setups = {
            "2 worker processes (prefork, concurrency 2)": [["--pool", "prefork", "--concurrency", "2"]],
            f"2 worker processes x {args.threads} threads": [
                ["--pool", "threads", "--concurrency", str(args.threads)]
            ]
            * 2,
            "2 worker processes (solo pool)": [["--pool", "solo"]] * 2,
        }
        chosen = {
            "all": setups,
            "prefork": list(setups)[:1],
            "threads": list(setups)[1:2],
            "solo": list(setups)[2:],
        }
        setups = {label: setups[label] for label in chosen[args.setups]}
        for label, workers in setups.items():
            if args.prefetch_multiplier:
                workers = [
                    [*options, "--prefetch-multiplier", str(args.prefetch_multiplier)] for options in workers
                ]
            # The floor just before each setup: on a shared machine the load drifts within a run.
            floors = measure_floors(receiver)
            processes = [start_worker(options, index) for index, options in enumerate(workers)]
            try:
                wait_for(workers_answering(len(workers)), timeout=60, message="workers to answer ping")
                delivered, seconds = perly_run(receiver, "/perly", args.messages, args.timeout, processes)
            finally:
                for process in processes:
                    stop_worker(process)
            rate = delivered / seconds
            print(f"perly, {label}: {delivered} deliveries in {seconds:.2f} s = {rate:.0f}/s")
            for name, floor in floors.items():
                print(f"  ratio vs {name}: {rate / floor:.0%} (target >= 60%)")
    celery_app.close()


if __name__ == "__main__":
    main()
