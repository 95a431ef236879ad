"""Ingestion benchmark: POST /v1/events through the full stack vs. the PostgreSQL COPY floor.

Starts gunicorn (2 sync workers) and a Celery worker against a fresh PostgreSQL database and
Redis, posts 1,000-event batches from 4 concurrent clients, then COPYs the same rows into a
table with the same indexes, and prints events/s for both, their ratio and the workers' RSS.
Only 127.0.0.1 is contacted; every loop is bounded in count and time. See README.md.
"""

from __future__ import annotations

import argparse
import http.client
import io
import os
import random
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlparse

import orjson
import psycopg

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from benchmarks.support import cpu_seconds, cpu_used, free_port  # noqa: E402

PYTHON = sys.executable
TYPES = ["login", "dashboard.viewed", "report.exported", "seat.invited", "feature.used", "api.call"]
DEADLINE_SECONDS = 300  # the whole HTTP phase stops here, whatever is left


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/perly_bench_ingest")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/2")
    parser.add_argument(
        "--events", type=int, default=40_000, help="events per round (>= 40,000 for the report)"
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--threads", type=int, default=2, help="threads per gunicorn worker (gthread)")
    parser.add_argument("--customers", type=int, default=500)
    parser.add_argument("--port", type=int, default=0, help="default: a free port")
    parser.add_argument("--keep", action="store_true", help="keep the database and leave nothing running")
    parser.add_argument(
        "--py-spy", metavar="DIR", help="record each gunicorn worker with py-spy during round 0 (raw stacks)"
    )
    return parser.parse_args()


def env_for(args) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DATABASE_URL=args.database_url,
        REDIS_URL=args.redis_url,
        CELERY_BROKER_URL=args.redis_url,
        DJANGO_SETTINGS_MODULE="perly.settings",
        DEBUG="false",
        SECRET_KEY="benchmark-only-secret-key-0123456789abcdefghijklmnopqrstuvwxyz",
        SECURE_SSL_REDIRECT="false",
    )
    return env


def recreate_database(url: str) -> None:
    parsed = urlparse(url)
    name = parsed.path.lstrip("/")
    admin = parsed._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def setup_django(args):
    os.environ.update(env_for(args))
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from customers.models import Customer
    from perly.apikeys import api_key_create
    from perly.services import workspace_create

    workspace = workspace_create(slug="bench", name="Bench")
    Customer.objects.bulk_create(
        [
            Customer(workspace_id=workspace.id, name=f"Customer {i}", external_id=f"acct_{i}")
            for i in range(args.customers)
        ]
    )
    customers = list(Customer.objects.filter(workspace_id=workspace.id).values_list("id", "external_id"))
    _, secret = api_key_create(
        workspace=workspace, name="bench", scopes="events:write", rate_limit_events=100_000_000
    )
    from django.db import connections

    connections.close_all()
    return workspace.id, customers, secret


def make_events(customers, count: int, seed: int, tag: str) -> list[dict]:
    rng = random.Random(seed)
    start = datetime.now(UTC) - timedelta(days=30)
    events = []
    for i in range(count):
        customer_id, external_id = rng.choice(customers)
        event = {
            "type": rng.choice(TYPES),
            "timestamp": (start + timedelta(seconds=rng.randint(0, 30 * 86400))).strftime(
                "%Y-%m-%dT%H:%M:%SZ"
            ),
            "properties": {
                "user_id": f"u_{rng.randint(1, 5000)}",
                "plan": "growth",
                "count": rng.randint(1, 50),
            },
            "idempotency_key": f"{tag}-{i}",
        }
        if i % 4 == 0:
            event["customer_external_id"] = external_id
        else:
            event["customer_id"] = customer_id
        events.append(event)
    return events


def start_services(args, env) -> tuple[subprocess.Popen, subprocess.Popen]:
    gunicorn = subprocess.Popen(
        [
            PYTHON, "-m", "gunicorn", "perly.wsgi", "-w", str(args.workers), "-b", f"127.0.0.1:{args.port}",
            "-k", "gthread" if args.threads > 1 else "sync", "--threads", str(args.threads),
            "--log-level", "warning", "--timeout", "60",
        ],
        cwd=ROOT, env=env, start_new_session=True,
    )  # fmt: skip
    worker = subprocess.Popen(
        [
            PYTHON, "-m", "celery", "-A", "perly", "worker", "-l", "warning", "--concurrency", "1",
            "-Q", "default,ingest,health,webhooks,syncs", "--without-gossip", "--without-mingle",
        ],
        cwd=ROOT, env=env, start_new_session=True, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", args.port, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return gunicorn, worker
        except OSError:
            time.sleep(0.2)
    stop(gunicorn, worker)
    raise SystemExit("gunicorn did not come up within 30 s")


def stop(*processes: subprocess.Popen) -> None:
    for process in processes:
        if process.poll() is None:
            process.terminate()  # warm shutdown: the master stops its own children
    for process in processes:
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


def start_py_spy(directory: str, master_pid: int) -> list[subprocess.Popen]:
    Path(directory).mkdir(parents=True, exist_ok=True)
    return [
        subprocess.Popen(
            [
                "py-spy",
                "record",
                "--format",
                "raw",
                "-r",
                "250",
                "-o",
                f"{directory}/worker-{pid}.txt",
                "-p",
                str(pid),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        for pid in worker_rss_mib(master_pid)
    ]


def worker_rss_mib(master_pid: int) -> dict[int, float]:
    """RSS of each gunicorn worker (children of the master), from /proc."""
    rss = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            status = Path(f"/proc/{entry}/status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        if int(fields.get("PPid", "0").strip()) == master_pid:
            rss[int(entry)] = int(fields["VmRSS"].split()[0]) / 1024
    return rss


def api_pids(master_pid: int, worker_pid: int, url: str) -> dict[str, list[int]]:
    """The processes of the API path: gunicorn workers and their PostgreSQL backends, the Celery
    worker (with its pool) and its backends (the health rescoring that ingestion triggers)."""
    gunicorn = list(worker_rss_mib(master_pid))
    celery = [worker_pid, *_children(worker_pid)]
    with psycopg.connect(url, autocommit=True) as conn:
        backends = conn.execute(
            "SELECT pid, client_port FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchall()
    # Which process owns each backend's client socket (ss lists the local port and the owner).
    listing = subprocess.run(
        ["ss", "-tnpH", "dst", "127.0.0.1:5432"], capture_output=True, text=True, check=False
    ).stdout
    owner_by_port = {}
    for line in listing.splitlines():
        parts = line.split()
        if len(parts) >= 6 and "pid=" in parts[5]:
            port = int(parts[3].rsplit(":", 1)[1])
            owner_by_port[port] = int(parts[5].split("pid=", 1)[1].split(",", 1)[0])
    groups: dict[str, list[int]] = {"gunicorn": gunicorn, "gunicorn's PostgreSQL": [], "celery": celery,
                                    "celery's PostgreSQL": []}  # fmt: skip
    for backend_pid, port in backends:
        owner = owner_by_port.get(port)
        if owner in gunicorn:
            groups["gunicorn's PostgreSQL"].append(backend_pid)
        elif owner in celery:
            groups["celery's PostgreSQL"].append(backend_pid)
    return groups


def _children(parent: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(stat[1]) == parent:
                found.append(int(entry))
    return found


def cpu_snapshot(groups: dict[str, list[int]]) -> dict[str, dict[int, float]]:
    return {name: {pid: cpu_seconds(pid) for pid in pids} for name, pids in groups.items()}


def post_batches(port: int, secret: str, bodies: list[bytes], clients: int) -> tuple[float, int, list[str]]:
    """Post `bodies` from `clients` threads (one keep-alive connection each)."""
    queue = list(enumerate(bodies))
    lock = threading.Lock()
    accepted = [0]
    failures: list[str] = []
    deadline = time.monotonic() + DEADLINE_SECONDS
    headers = {"Authorization": f"Bearer {secret}", "Content-Type": "application/json"}

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        while time.monotonic() < deadline:
            with lock:
                if not queue:
                    return
                _, body = queue.pop()
            try:
                conn.request("POST", "/v1/events", body=body, headers=headers)
                response = conn.getresponse()
                payload = response.read()
            except (OSError, http.client.HTTPException) as exc:
                failures.append(repr(exc))
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                continue
            if response.status != 200:
                failures.append(f"{response.status} {payload[:200]!r}")
                continue
            with lock:
                accepted[0] += orjson.loads(payload)["accepted"]

    threads = [threading.Thread(target=client) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=DEADLINE_SECONDS + 60)
    return time.perf_counter() - started, accepted[0], failures


def copy_floor(url: str, rows_by_batch: list[list[tuple]], clients: int) -> tuple[float, float]:
    """COPY the same rows, one 1,000-row COPY + commit per batch from `clients` connections, into
    bench_copy_floor (see create_floor_table). Returns seconds and the backends' CPU seconds."""
    queue = list(rows_by_batch)
    lock = threading.Lock()
    backend_cpu: list[float] = []

    def copier() -> None:
        with psycopg.connect(url) as conn:
            while True:
                with lock:
                    if not queue:
                        backend_cpu.append(cpu_seconds(conn.info.backend_pid))
                        return
                    rows = queue.pop()
                with (
                    conn.cursor() as cursor,
                    cursor.copy(
                        "COPY bench_copy_floor (id, workspace_id, customer_id, type, timestamp, properties,"
                        " idempotency_key, received_at) FROM STDIN"
                    ) as copy,
                ):
                    for row in rows:
                        copy.write_row(row)
                conn.commit()

    threads = [threading.Thread(target=copier) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=DEADLINE_SECONDS)
    return time.perf_counter() - started, sum(backend_cpu)


def create_floor_table(url: str) -> None:
    """The floor's table: the events table's columns and indexes (LIKE ... INCLUDING INDEXES, so no
    triggers). Created once and kept across rounds, so it grows like events_event does: a fresh
    table each round made the floor's indexes 3-5x smaller than the API's by the last round."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS bench_copy_floor")
        conn.execute("CREATE TABLE bench_copy_floor (LIKE events_event INCLUDING DEFAULTS INCLUDING INDEXES)")


def floor_rows(workspace_id: str, batches: list[list[dict]], by_external: dict) -> list[list[tuple]]:
    """The rows the API stored, as COPY input: same customers, types, properties and keys."""
    from events.storage import new_event_ids  # ids shaped like the API's (random after the time)

    now = datetime.now(UTC)
    rows_by_batch = []
    for batch in batches:
        rows = []
        for event_id, event in zip(new_event_ids(len(batch)), batch, strict=True):
            customer_id = event.get("customer_id") or by_external[event["customer_external_id"]]
            properties = orjson.dumps(event["properties"]).decode()
            rows.append(
                (event_id, workspace_id, customer_id, event["type"], event["timestamp"], properties,
                 event["idempotency_key"], now)
            )  # fmt: skip
        rows_by_batch.append(rows)
    return rows_by_batch


def main() -> None:
    args = parse_args()
    args.port = args.port or free_port()
    recreate_database(args.database_url)
    workspace_id, customers, secret = setup_django(args)
    env = env_for(args)
    by_external = {ext: cid for cid, ext in customers}
    per_round = args.events // args.batch
    warmup = [make_events(customers, args.batch, seed=10_000 + i, tag=f"warm{i}") for i in range(4)]

    api, floor, rss, failures, cpu = [], [], [], [], []
    create_floor_table(args.database_url)
    gunicorn, worker = start_services(args, env)
    try:
        _, _, warm_failures = post_batches(
            args.port, secret, [orjson.dumps({"events": b}) for b in warmup], args.clients
        )
        assert not warm_failures, warm_failures[:3]
        copy_floor(
            args.database_url, floor_rows(workspace_id, warmup, by_external), args.clients
        )  # same size
        rss.append(worker_rss_mib(gunicorn.pid))
        # Rounds alternate API and COPY so both see the same background load; best of each counts.
        for round_number in range(args.rounds):
            batches = [
                make_events(customers, args.batch, seed=round_number * 1000 + i, tag=f"r{round_number}b{i}")
                for i in range(per_round)
            ]
            bodies = [orjson.dumps({"events": batch}) for batch in batches]
            spies = start_py_spy(args.py_spy, gunicorn.pid) if args.py_spy and round_number == 0 else []
            groups = api_pids(gunicorn.pid, worker.pid, args.database_url)
            before = cpu_snapshot(groups)
            seconds, accepted, round_failures = post_batches(args.port, secret, bodies, args.clients)
            used = cpu_used(before, cpu_snapshot(api_pids(gunicorn.pid, worker.pid, args.database_url)))
            for spy in spies:
                spy.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
                spy.wait(timeout=30)
            failures += round_failures
            rss.append(worker_rss_mib(gunicorn.pid))
            if accepted != per_round * args.batch:
                failures.append(f"round {round_number}: accepted {accepted} of {per_round * args.batch}")
            api.append(accepted / seconds)
            rows = floor_rows(workspace_id, batches, by_external)
            copy_seconds, copy_backend_cpu = copy_floor(args.database_url, rows, args.clients)
            floor.append(len(rows) * args.batch / copy_seconds)
            used["COPY backends"] = copy_backend_cpu
            cpu.append({name: 1000 * value / per_round for name, value in used.items()})
    finally:
        stop(gunicorn, worker)

    out = io.StringIO()
    kind = f"gthread x{args.threads}" if args.threads > 1 else "sync"
    out.write(
        f"{args.rounds} rounds of {per_round * args.batch:,} events ({per_round} batches of {args.batch}), "
        f"{args.clients} clients, gunicorn {args.workers} workers ({kind}), Celery worker running\n"
    )
    for number, (api_rate, floor_rate) in enumerate(zip(api, floor, strict=True)):
        out.write(f"round {number}: API {api_rate:,.0f} events/s, COPY floor {floor_rate:,.0f} rows/s\n")
    out.write(f"API (best round):        {max(api):,.0f} events/s\n")
    out.write(f"COPY floor (best round): {max(floor):,.0f} rows/s\n")
    out.write(f"ratio: {max(api) / max(floor):.0%} of the COPY floor\n")
    ratios = sorted(a / f for a, f in zip(api, floor, strict=True))
    out.write(f"median per-round ratio: {ratios[len(ratios) // 2]:.0%}\n")
    # CPU per 1,000 events, independent of how busy the machine is: where the work goes.
    for name in cpu[0]:
        values = sorted(round_cpu[name] for round_cpu in cpu)
        out.write(
            f"CPU ms per 1,000 events, {name}: median {values[len(values) // 2]:.1f} (min {values[0]:.1f})\n"
        )
    for pid in sorted(rss[0]):
        steps = " -> ".join(f"{snapshot.get(pid, 0):.1f}" for snapshot in rss)
        out.write(f"gunicorn worker {pid} RSS MiB (after warm-up, then after each round): {steps}\n")
    print(out.getvalue(), end="")
    if failures:
        print(f"{len(failures)} failures, e.g. {failures[:3]}")
    if not args.keep:
        parsed = urlparse(args.database_url)
        with psycopg.connect(parsed._replace(path="/postgres").geturl(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{parsed.path.lstrip("/")}" WITH (FORCE)')
    if failures:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
