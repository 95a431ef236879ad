"""Sync N Stripe customers (each with a subscription and an invoice) from the fake Stripe API
and report records/s, against the same fake serving the same pages to a bare HTTP loop.

    .venv/bin/python benchmarks/integrations/bench_stripe_sync.py --customers 50000

Uses a scratch PostgreSQL database (created and migrated if missing; default
postgres://postgres@127.0.0.1:5432/perly_integrations_bench). Network: 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def setup(database_url: str, fresh: bool) -> None:
    import psycopg

    os.environ.setdefault("SECRET_KEY", "benchmark-only-secret-key-0123456789")
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "perly.settings")
    name = database_url.rsplit("/", 1)[1]
    with psycopg.connect(database_url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        if fresh:  # earlier runs' rows make every index bigger: start from empty tables
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def bare_loop(base_url: str, key: str, deadline: float) -> tuple[int, float]:
    """Every page of customers, subscriptions and invoices, decoded, and nothing else."""
    import requests

    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {key}"
    records, started = 0, time.perf_counter()
    for path, extra in (
        ("/v1/customers", {}),
        ("/v1/subscriptions", {"status": "all"}),
        ("/v1/invoices", {}),
    ):
        after = None
        while time.perf_counter() < deadline:
            params = {"limit": 100, **extra, **({"starting_after": after} if after else {})}
            body = session.get(base_url + path, params=params, timeout=30).json()
            records += len(body["data"])
            if not body["has_more"]:
                break
            after = body["data"][-1]["id"]
    return records, time.perf_counter() - started


def backend_cpu_seconds(pid: int) -> float | None:
    """User + system CPU of a PostgreSQL backend on this machine (None if /proc is not readable)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def stripe_integration(slug: str, name: str, key: str):
    """A new workspace with a Stripe integration on `key` and a queued manual sync run."""
    from django.db import transaction

    from integrations.models import Integration, SyncRun
    from perly.crypto import encrypt_json
    from perly.services import workspace_create

    with transaction.atomic():
        workspace = workspace_create(slug=slug, name=name)
        integration = Integration.objects.create(
            workspace=workspace,
            provider="stripe",
            credentials_encrypted=encrypt_json({"api_key": key}),
            credentials_hint={"api_key": f"sk_…{key[-4:]}"},
            config={"sync_interval_minutes": 60, "create_customers": True},
        )
        run = SyncRun.objects.create(workspace=workspace, integration=integration, trigger="manual")
    return workspace, integration, run


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=50_000)
    parser.add_argument(
        "--database-url", default="postgres://postgres@127.0.0.1:5432/perly_integrations_bench"
    )
    parser.add_argument("--max-seconds", type=float, default=600)
    parser.add_argument("--fresh", action="store_true", help="drop and recreate the scratch database first")
    args = parser.parse_args()
    setup(args.database_url, args.fresh)

    from django.test import override_settings

    from customers.models import Customer
    from integrations import sync
    from tests.integrations.fakes.stripe import FakeStripe

    key = "sk_test_benchmarkbenchmarkbench01"
    fake = FakeStripe(api_keys=(key,))
    now = int(time.time())
    for i in range(args.customers):
        customer = fake.add_customer(
            email=f"billing@co{i}.example.com", name=f"Co {i}", created=now - 10 * 86400 - i
        )
        fake.add_subscription(customer["id"], unit_amount=1000 + i % 50 * 100, created=customer["created"])
        fake.add_invoice(customer["id"], created=customer["created"])
    fake.start()
    deadline = time.perf_counter() + args.max_seconds

    floor_records, floor_seconds = bare_loop(fake.url, key, deadline)

    slug = f"bench-{now}"
    workspace, integration, run = stripe_integration(slug, "Integrations benchmark", key)
    # Time the signals phase on its own: it is bound by health's batch signal upsert. CPU time
    # (this process, and the PostgreSQL backend serving the sync's connection) does not depend
    # on how busy the machine is.
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend_pid = cursor.fetchone()[0]
    phases = {"signals": 0.0, "signals_cpu": 0.0, "signals_backend_cpu": 0.0}
    write_signals = sync.write_signals

    def timed_write_signals(ctx):
        t0, cpu0, backend0 = time.perf_counter(), time.process_time(), backend_cpu_seconds(backend_pid)
        write_signals(ctx)
        phases["signals"] += time.perf_counter() - t0
        phases["signals_cpu"] += time.process_time() - cpu0
        if backend0 is not None:
            phases["signals_backend_cpu"] += backend_cpu_seconds(backend_pid) - backend0

    sync.write_signals = timed_write_signals
    with override_settings(STRIPE_API_BASE=fake.url):
        started, cpu_started = time.perf_counter(), time.process_time()
        backend_started = backend_cpu_seconds(backend_pid)
        if os.environ.get("BENCH_PROFILE"):
            import cProfile
            import pstats

            profiler = cProfile.Profile()
            outcome = profiler.runcall(sync.execute, run.pk)
            if os.environ["BENCH_PROFILE"].endswith(".prof"):  # a path: keep the stats for pstats
                profiler.dump_stats(os.environ["BENCH_PROFILE"])
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(45)
        else:
            outcome = sync.execute(run.pk)
        sync_seconds = time.perf_counter() - started
        cpu_seconds = time.process_time() - cpu_started
        backend_finished = backend_cpu_seconds(backend_pid)
        backend_seconds = None if backend_started is None else backend_finished - backend_started
    fake.stop()
    run.refresh_from_db()
    stats = run.stats
    result = {
        "customers": args.customers,
        "outcome": outcome,
        "records_read": stats["records_read"],
        "customers_created": stats["customers_created"],
        "signals_written": stats["signals_written"],
        "requests_made": stats["requests_made"],
        "sync_seconds": round(sync_seconds, 1),
        "sync_records_per_second": round(stats["records_read"] / sync_seconds),
        # This process (sync + the in-process fake); the rest of the wall time is PostgreSQL,
        # Redis and, on a shared machine, waiting for a core.
        "sync_process_cpu_seconds": round(cpu_seconds, 1),
        "sync_backend_cpu_seconds": None if backend_seconds is None else round(backend_seconds, 1),
        "load_average_1m": round(os.getloadavg()[0], 1),
        "records_phase_seconds": round(sync_seconds - phases["signals"], 1),
        "records_phase_records_per_second": round(stats["records_read"] / (sync_seconds - phases["signals"])),
        "signals_phase_seconds": round(phases["signals"], 1),
        "signals_phase_process_cpu_seconds": round(phases["signals_cpu"], 1),
        "signals_phase_backend_cpu_seconds": round(phases["signals_backend_cpu"], 1),
        "bare_loop_records": floor_records,
        "bare_loop_seconds": round(floor_seconds, 1),
        "bare_loop_records_per_second": round(floor_records / floor_seconds),
        "sync_vs_bare_loop": round(sync_seconds / floor_seconds, 2),
        "records_phase_vs_bare_loop": round((sync_seconds - phases["signals"]) / floor_seconds, 2),
        "perly_customers_in_workspace": Customer.objects.filter(workspace=workspace).count(),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
