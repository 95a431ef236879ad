"""Soak: a long mixed load on 2 gunicorn workers and 2 Celery workers (+ beat), then the books.

    .venv/bin/python benchmarks/soak/run.py [--minutes 10] [--rate 30] [--clients 6]

PostgreSQL (SOAK_DATABASE_URL, default perly_soak, created if missing) and Redis (SOAK_REDIS_URL,
default db 7) on 127.0.0.1. The traffic: 60% reads, 30% event batches (50 events, unique
idempotency keys), 10% writes (create, PATCH metadata, delete), paced to --rate requests/s over
--clients threads. A webhook endpoint subscribed to every event posts to a local receiver; one
Stripe integration (the fake from tests/integrations/fakes, 200 customers) is re-synced whenever
its last sync has finished. Reports non-429 errors (target 0), p50/p99 per endpoint, RSS of every
process at the start and the end of the load (target: growth < 10%), events stored vs accepted,
webhook and sync outcomes. JSON to benchmarks/results/soak.json, a summary on stdout.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
DATABASE_URL = os.environ.get("SOAK_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/perly_soak")
REDIS_URL = os.environ.get("SOAK_REDIS_URL", "redis://127.0.0.1:6379/7")
STRIPE_KEY = "sk_test_4eC39HqLyjWDarjtT1zdp7dc"
QUEUES = "default,ingest,health,webhooks,syncs"
ENV = {
    "DJANGO_SETTINGS_MODULE": "perly.settings",
    "DEBUG": "false",
    "SECRET_KEY": "soak-only-secret-key-0123456789abcdef0123456789",
    "DATABASE_URL": DATABASE_URL,
    "REDIS_URL": REDIS_URL,
    "CELERY_BROKER_URL": REDIS_URL,
    "PERLY_WEBHOOK_ALLOW_PRIVATE_URLS": "true",
    "ALLOWED_HOSTS": "127.0.0.1",
    "LOG_LEVEL": "WARNING",
}
os.environ.update(ENV)
sys.path.insert(0, str(ROOT))
from benchmarks.support import ensure_database, free_port  # noqa: E402


def rss_mib(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def process_tree(root: int) -> list[int]:
    """root and its descendants (gunicorn workers, Celery pool children)."""
    children: dict[int, list[int]] = defaultdict(list)
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                ppid = int(stat.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children[ppid].append(int(entry))
    out, stack = [], [root]
    while stack:
        pid = stack.pop()
        out.append(pid)
        stack.extend(children.get(pid, []))
    return out


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


class Load:
    """The traffic mix, paced; every request's endpoint, status and latency are recorded."""

    def __init__(self, base: str, key: str, customers: list[str], rate: float, clients: int):
        self.base, self.key, self.rate, self.clients = base, key, rate, clients
        self.customers = customers
        self.created: list[str] = []
        self.lock = threading.Lock()
        self.samples: dict[str, list[float]] = defaultdict(list)
        self.statuses: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
        self.errors: list[str] = []
        self.events_accepted = 0
        self.stop_at = 0.0

    def record(self, name: str, status: int, seconds: float, detail: str = "") -> None:
        with self.lock:
            self.samples[name].append(seconds)
            self.statuses[name][status] += 1
            if status != 429 and not 200 <= status < 300 and len(self.errors) < 50:
                self.errors.append(f"{name} -> {status} {detail[:200]}")

    def one(self, session, rng: random.Random) -> None:
        customer = rng.choice(self.customers)
        roll = rng.random()
        if roll < 0.60:
            name, method, path, body = rng.choice(
                [
                    ("GET /v1/customers", "GET", "/v1/customers?limit=20", None),
                    ("GET /v1/customers/:id", "GET", f"/v1/customers/{customer}", None),
                    ("GET /v1/customers/:id/health", "GET", f"/v1/customers/{customer}/health", None),
                    ("GET /v1/events", "GET", f"/v1/events?customer={customer}&limit=20", None),
                    ("GET /v1/health/summary", "GET", "/v1/health/summary", None),
                ]
            )
        elif roll < 0.90:
            events = [
                {
                    "customer_id": rng.choice(self.customers),
                    "type": rng.choice(["login", "feature_used", "api_call", "seat_added"]),
                    "idempotency_key": uuid.uuid4().hex,
                    "properties": {"n": rng.randint(1, 100)},
                }
                for _ in range(50)
            ]
            name, method, path, body = "POST /v1/events", "POST", "/v1/events", {"events": events}
        else:
            kind = rng.random()
            with self.lock:
                victim = self.created.pop() if kind < 0.2 and self.created else None
            if victim:
                name, method, path, body = (
                    "DELETE /v1/customers/:id",
                    "DELETE",
                    f"/v1/customers/{victim}",
                    None,
                )
            elif kind < 0.6:
                body = {"metadata": {f"k{rng.randint(0, 20)}": str(rng.randint(0, 10**6))}}
                name, method, path = "PATCH /v1/customers/:id", "PATCH", f"/v1/customers/{customer}"
            else:
                body = {"name": f"Soak {uuid.uuid4().hex[:8]}", "plan": "growth"}
                name, method, path = "POST /v1/customers", "POST", "/v1/customers"
        started = time.perf_counter()
        try:
            response = session.request(method, self.base + path, json=body, timeout=30)
        except Exception as exc:
            self.record(name, 599, time.perf_counter() - started, repr(exc))
            return
        elapsed = time.perf_counter() - started
        self.record(name, response.status_code, elapsed, response.text)
        if response.status_code == 200 and name == "POST /v1/events":
            with self.lock:
                self.events_accepted += response.json()["accepted"]
        elif response.status_code == 201 and name == "POST /v1/customers":
            with self.lock:
                self.created.append(response.json()["id"])

    def client(self, index: int) -> None:
        import requests

        rng = random.Random(index)
        interval = self.clients / self.rate
        next_at = time.monotonic() + rng.random() * interval
        with requests.Session() as session:
            session.headers["Authorization"] = f"Bearer {self.key}"
            while time.monotonic() < self.stop_at:
                delay = next_at - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                next_at = max(next_at + interval, time.monotonic() - interval)
                self.one(session, rng)

    def run(self, seconds: float) -> None:
        self.stop_at = time.monotonic() + seconds
        threads = [threading.Thread(target=self.client, args=(i,)) for i in range(self.clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()


def keep_syncing(base: str, key: str, integration_id: str, stop: threading.Event, log: list) -> None:
    """Request a new sync each time the last one has finished (one integration always syncing)."""
    import requests

    headers = {"Authorization": f"Bearer {key}"}
    while not stop.wait(2):
        body = requests.get(f"{base}/v1/integrations/{integration_id}", headers=headers, timeout=30).json()
        if (body.get("last_sync") or {}).get("status") in ("queued", "running"):
            continue
        response = requests.post(f"{base}/v1/integrations/{integration_id}/sync", headers=headers, timeout=30)
        log.append(response.status_code)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=30.0, help="requests per second, all clients")
    parser.add_argument("--clients", type=int, default=6)
    parser.add_argument("--customers", type=int, default=300)
    parser.add_argument("--warmup", type=float, default=30.0, help="seconds of load before the RSS baseline")
    args = parser.parse_args()

    ensure_database(DATABASE_URL)
    subprocess.run([PYTHON, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, check=True)

    import django

    django.setup()
    import requests
    from django.db import connection

    from customers.services import customer_create
    from events.models import Event
    from integrations.models import SyncRun
    from perly.apikeys import api_key_create
    from perly.redis_client import get_redis
    from perly.services import workspace_create
    from tests.integrations.fakes.stripe import FakeStripe
    from tests.webhooks.receiver import Receiver
    from webhooks.models import WebhookMessage

    get_redis().flushdb()
    workspace = workspace_create(slug=f"soak-{uuid.uuid4().hex[:8]}", name="Soak")
    big = 10**9  # the soak measures errors and latency, not the limiter
    _, key = api_key_create(
        workspace=workspace, name="soak", rate_limit_read=big, rate_limit_write=big, rate_limit_events=big
    )
    customers = [
        customer_create(
            workspace_id=workspace.id, data={"name": f"Seed {i}", "email": f"ops@seed{i}.example.com"}
        ).id
        for i in range(args.customers)
    ]
    connection.close()

    receiver = Receiver().start()
    fake = FakeStripe(api_keys=(STRIPE_KEY,)).start()
    for i in range(200):
        stripe_customer = fake.add_customer(email=f"billing@stripe{i}.example.com", name=f"Stripe {i}")
        fake.add_subscription(stripe_customer["id"])
    env = {**os.environ, "STRIPE_API_BASE": fake.url}

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    gunicorn = [PYTHON, "-m", "gunicorn", "perly.wsgi:application", "--bind", f"127.0.0.1:{port}"]
    gunicorn += ["--workers", "2", "--threads", "4", "--log-level", "warning"]
    celery = [PYTHON, "-m", "celery", "-A", "perly", "worker", "-l", "warning", "-Q", QUEUES]
    celery += ["--concurrency", "2", "--without-gossip", "--without-mingle"]
    beat_schedule = f"/tmp/perly-soak-beat-{os.getpid()}"
    commands = {
        "gunicorn": gunicorn,
        "celery-1": [*celery, "-n", f"soak1-{os.getpid()}@%h"],
        "celery-2": [*celery, "-n", f"soak2-{os.getpid()}@%h"],
        "beat": [PYTHON, "-m", "celery", "-A", "perly", "beat", "-l", "warning", "-s", beat_schedule],
    }
    processes = {
        name: subprocess.Popen(command, cwd=ROOT, env=env, start_new_session=True)
        for name, command in commands.items()
    }
    stop_sync = threading.Event()
    sync_requests: list[int] = []
    report: dict = {}
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("gunicorn did not come up")
            time.sleep(0.3)
        auth = {"Authorization": f"Bearer {key}"}
        endpoint = requests.post(
            base + "/v1/webhooks", json={"url": receiver.url(), "events": ["*"]}, headers=auth, timeout=30
        )
        endpoint.raise_for_status()
        integration = requests.post(
            base + "/v1/integrations",
            json={"provider": "stripe", "credentials": {"api_key": STRIPE_KEY}},
            headers=auth,
            timeout=30,
        )
        integration.raise_for_status()
        syncer = threading.Thread(
            target=keep_syncing, args=(base, key, integration.json()["id"], stop_sync, sync_requests)
        )
        syncer.start()

        load = Load(base, key, customers, args.rate, args.clients)
        print(f"warm-up {args.warmup:.0f}s, then {args.minutes:g} min at {args.rate:g} req/s", flush=True)
        load.run(args.warmup)
        warm = Load(base, key, customers, args.rate, args.clients)
        warm.events_accepted, warm.created = load.events_accepted, load.created  # carried over
        pids = {name: process_tree(process.pid) for name, process in processes.items()}
        rss_start = {f"{name}[{pid}]": rss_mib(pid) for name, tree in pids.items() for pid in tree}
        started = time.monotonic()
        warm.run(args.minutes * 60)
        duration = time.monotonic() - started
        rss_end = {f"{name}[{pid}]": rss_mib(pid) for name, tree in pids.items() for pid in tree}
        stop_sync.set()
        syncer.join()

        # Let the workers finish: outbox drained, no sync running.
        drain_deadline = time.monotonic() + 120
        while time.monotonic() < drain_deadline:
            pending = WebhookMessage.objects.filter(workspace_id=workspace.id, status="pending").count()
            running = SyncRun.objects.filter(
                workspace_id=workspace.id, status__in=["queued", "running"]
            ).count()
            if not pending and not running:
                break
            time.sleep(1)
        connection.close()

        stored = Event.objects.filter(workspace_id=workspace.id).count()
        accepted = warm.events_accepted  # warm-up + measured phase
        messages = dict(
            (status, WebhookMessage.objects.filter(workspace_id=workspace.id, status=status).count())
            for status in ("pending", "delivered", "failed")
        )
        runs = dict(
            (status, SyncRun.objects.filter(workspace_id=workspace.id, status=status).count())
            for status in ("succeeded", "partial", "failed", "queued", "running")
        )
        endpoints = {}
        for name in sorted(set(load.samples) | set(warm.samples)):
            samples = warm.samples.get(name, [])
            statuses = dict(warm.statuses.get(name, {}))
            errors = sum(n for s, n in statuses.items() if s != 429 and not 200 <= s < 300)
            endpoints[name] = {
                "requests": len(samples),
                "p50_ms": round(percentile(samples, 0.50) * 1000, 1),
                "p99_ms": round(percentile(samples, 0.99) * 1000, 1),
                "errors_non_429": errors,
                "429": statuses.get(429, 0),
            }
        total = sum(e["requests"] for e in endpoints.values())
        growth = {
            name: round((rss_end[name] - rss_start[name]) / rss_start[name] * 100, 1)
            for name in rss_start
            if rss_start[name] and rss_end.get(name)
        }
        report = {
            "minutes": round(duration / 60, 2),
            "rate_target": args.rate,
            "rate_achieved": round(total / duration, 1),
            "clients": args.clients,
            "requests": total,
            "errors_non_429": sum(e["errors_non_429"] for e in endpoints.values()),
            "warmup_errors_non_429": sum(
                n
                for s in load.statuses.values()
                for code, n in s.items()
                if code != 429 and not 200 <= code < 300
            ),
            "error_samples": (load.errors + warm.errors)[:20],
            "endpoints": endpoints,
            "rss_mib_start": {k: round(v, 1) for k, v in rss_start.items() if v},
            "rss_mib_end": {k: round(v, 1) for k, v in rss_end.items() if v},
            "rss_growth_pct": growth,
            "events_accepted": accepted,
            "events_stored": stored,
            "webhook_messages": messages,
            "webhook_requests_received": receiver.count(),
            "webhook_unique_ids_received": len({r.headers.get("webhook-id") for r in receiver.received()}),
            "sync_runs": runs,
            "sync_requests": {str(code): sync_requests.count(code) for code in set(sync_requests)},
            "load_average": os.getloadavg(),
        }
    finally:
        stop_sync.set()
        for process in processes.values():
            # The main process only: Celery then shuts its pool down warmly (finishing tasks).
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGTERM)
        for process in processes.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        receiver.stop()
        fake.stop()
    out = ROOT / "benchmarks" / "results"
    out.mkdir(exist_ok=True)
    (out / "soak.json").write_text(json.dumps(report, indent=2))
    print_summary(report)
    ok = (
        report["errors_non_429"] == report["warmup_errors_non_429"] == 0
        and report["events_accepted"] == report["events_stored"]
        and all(g < 10 for g in report["rss_growth_pct"].values())
    )
    return 0 if ok else 1


def print_summary(report: dict) -> None:
    print(
        f"{report['minutes']} min, {report['requests']:,} requests "
        f"({report['rate_achieved']} req/s, {report['clients']} clients); "
        f"non-429 errors: {report['errors_non_429']}; load average {report['load_average']}"
    )
    print("| endpoint | requests | p50 ms | p99 ms | non-429 errors | 429 |")
    print("|---|---|---|---|---|---|")
    for name, e in report["endpoints"].items():
        print(
            f"| {name} | {e['requests']:,} | {e['p50_ms']} | {e['p99_ms']} | {e['errors_non_429']} | {e['429']} |"
        )
    print("| process | RSS start MiB | RSS end MiB | growth |")
    print("|---|---|---|---|")
    for name, start in report["rss_mib_start"].items():
        end = report["rss_mib_end"].get(name)
        print(f"| {name} | {start} | {end} | {report['rss_growth_pct'].get(name)}% |")
    print(f"events accepted {report['events_accepted']:,}, stored {report['events_stored']:,}")
    print(
        f"webhook messages {report['webhook_messages']}, receiver got {report['webhook_requests_received']:,} "
        f"requests ({report['webhook_unique_ids_received']:,} distinct webhook-ids)"
    )
    print(f"sync runs {report['sync_runs']}, sync requests {report['sync_requests']}")
    for sample in report["error_samples"]:
        print("error:", sample)


if __name__ == "__main__":
    sys.exit(main())
