"""Health benchmark: full rescore + snapshot vs a plain GROUP BY floor, and API p95 at scale.

Usage (PostgreSQL on 127.0.0.1, trust auth; builds and drops a scratch database):
    .venv/bin/python benchmarks/health/bench.py --customers 100000 --events 10000000 \
        --small-customers 10000 --small-events 1000000

Everything runs against 127.0.0.1 only; every loop is bounded in count.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from benchmarks.support import admin_sql  # noqa: E402


def parse_args():
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--small-customers", type=int, default=10_000)
    parser.add_argument("--small-events", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--db", default="perly_health_bench")
    parser.add_argument("--pg", default="postgres://postgres@127.0.0.1:5432")
    parser.add_argument("--keep", action="store_true", help="Keep the scratch database afterwards.")
    parser.add_argument("--reuse", action="store_true", help="Reuse an already generated scratch database.")
    parser.add_argument("--api-only", action="store_true", help="With --reuse: only the API timings.")
    parser.add_argument("--no-api", action="store_true", help="Only the floor and rollup timings.")
    parser.add_argument(
        "--custom-metrics",
        action="store_true",
        help="Define 10 workspace metrics (counts, a ratio, a change, a sum), weighted, before the rollups.",
    )
    parser.add_argument(
        "--cohort-requests", type=int, default=0, help="Time this many cohort requests (a metric and score)."
    )
    return parser.parse_args()


ARGS = parse_args()
os.environ.update(
    DATABASE_URL=f"{ARGS.pg}/{ARGS.db}",
    DJANGO_SETTINGS_MODULE="perly.settings",
    SECRET_KEY=os.environ.get("SECRET_KEY", "bench-only-secret-key-0123456789abcdef"),
    DEBUG="false",
)
# The rollup runs in this process; Redis serves only the cache (and is never flushed here).
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/11")


def create_database() -> None:
    admin_sql(ARGS.pg, f"DROP DATABASE IF EXISTS {ARGS.db}")
    admin_sql(ARGS.pg, f"CREATE DATABASE {ARGS.db}")
    migrate()


def generate(cursor, workspace_id: str, prefix: str, customers: int, events: int, days: int) -> float:
    """Customers and events with generate_series: activity skewed per customer so the scores spread."""
    started = time.perf_counter()
    cursor.execute(
        """
        INSERT INTO customers_customer (id, workspace_id, name, plan, owner, lifecycle_stage, metadata,
                                        created_at, updated_at)
        SELECT 'cus_' || %(p)s || lpad(i::text, 25, '0'), %(ws)s, 'Customer ' || i,
               (ARRAY['starter','growth','business','enterprise'])[1 + i %% 4],
               'owner' || (i %% 5) || '@bench.io', 'active', '{}'::jsonb, now(), now()
        FROM generate_series(1, %(n)s) AS i
        """,
        {"p": prefix, "ws": workspace_id, "n": customers},
    )
    # Customer c's events: one in five has gone quiet (all 30-60 days old); the others are
    # skewed towards recent days by a per-customer power, so scores spread over the range.
    cursor.execute(
        """
        INSERT INTO events_event (id, workspace_id, customer_id, type, timestamp, properties, received_at)
        SELECT 'evt_' || %(p)s || lpad(i::text, 25, '0'), %(ws)s, 'cus_' || %(p)s || lpad(c::text, 25, '0'),
               'type' || (i %% (1 + c %% 9)),
               now() - make_interval(secs => 86400 * CASE WHEN c %% 5 = 0 THEN 30 + random() * 30
                                                    ELSE %(days)s * random() ^ (1 + c %% 4) END),
               jsonb_build_object('user_id', 'u' || (i %% (1 + c %% 6)), 'amount', i %% 100), now()
        FROM (SELECT i, 1 + (i * 7919) %% %(n)s AS c FROM generate_series(1::bigint, %(e)s) AS i) AS g
        """,
        {"p": prefix, "ws": workspace_id, "n": customers, "e": events, "days": days},
    )
    record_churn(cursor, workspace_id, prefix)
    return time.perf_counter() - started


def record_churn(cursor, workspace_id: str, prefix: str) -> None:
    """Recorded churn, so cohort requests count real labels: one customer in ten, at a random
    moment of the last 60 days; the quiet ones (one in five, silent for 30 days) twice as often."""
    cursor.execute(
        """
        WITH churned AS (
            SELECT c.id, now() - make_interval(secs => 86400 * 60 * random()) AS at
            FROM customers_customer c
            WHERE c.workspace_id = %(ws)s
              AND (substr(c.id, 6)::bigint %% 10 = 3 OR substr(c.id, 6)::bigint %% 20 = 0)
        ),
        marked AS (
            UPDATE customers_customer c SET churned_at = ch.at, lifecycle_stage = 'churned'
            FROM churned ch WHERE c.id = ch.id
        )
        INSERT INTO customers_outcome (id, workspace_id, customer_id, kind, at, source, created_at)
        SELECT 'out_' || %(p)s || substr(id, 6), %(ws)s, id, 'churned', at, 'api', now() FROM churned
        """,
        {"ws": workspace_id, "p": prefix},
    )


def migrate() -> None:
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, check=True, env=os.environ
    )


def main() -> None:
    if not ARGS.reuse:
        create_database()
    else:
        migrate()  # a reused database gets the code's newer migrations (cheap when none)
    import django

    django.setup()
    from django.db import connection
    from django.test import Client

    from health import services
    from perly.apikeys import api_key_create
    from perly.models import Workspace

    plans = [("big", ARGS.customers, ARGS.events), ("small", ARGS.small_customers, ARGS.small_events)]
    workspaces = {}
    if not ARGS.reuse:
        with connection.cursor() as cursor:
            cursor.execute("ALTER TABLE events_event SET UNLOGGED")  # scratch data: skip WAL while loading
            # Load without the secondary indexes, then build them once (much faster than row by row).
            cursor.execute(
                "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'events_event' "
                "AND indexname NOT LIKE '%%pkey'"
            )
            indexes = cursor.fetchall()
            for index_name, _ in indexes:
                cursor.execute(f'DROP INDEX "{index_name}"')
            for name, customers, events in plans:
                ws = Workspace.objects.create(slug=name, name=name)
                seconds = generate(cursor, ws.id, name[0], customers, events, ARGS.days)
                print(
                    f"generated {name}: {customers:,} customers, {events:,} events in {seconds:.1f}s",
                    flush=True,
                )
            started = time.perf_counter()
            for _, definition in indexes:
                cursor.execute(definition)
            cursor.execute("ANALYZE")
            print(f"indexes + analyze: {time.perf_counter() - started:.1f}s", flush=True)
    for name, _, _ in plans:
        workspaces[name] = Workspace.objects.get(slug=name)
    with connection.cursor() as cursor:
        for name, workspace in workspaces.items():
            cursor.execute("SELECT 1 FROM customers_outcome WHERE workspace_id = %s LIMIT 1", [workspace.id])
            if cursor.fetchone() is None:  # a database generated before the churn was
                record_churn(cursor, workspace.id, name[0])

    from health import rescore_sql

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]
    tick = os.sysconf("SC_CLK_TCK")

    def backend_cpu() -> float:
        """CPU seconds (user + system) of this connection's PostgreSQL backend (the same machine).
        Parallel workers' CPU is not included."""
        fields = Path(f"/proc/{backend}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / tick

    if not Path(f"/proc/{backend}/stat").exists():  # PostgreSQL on another machine
        backend_cpu = lambda: 0.0  # noqa: E731
    rescore_sql.CPU_PROBE = backend_cpu

    from datetime import timedelta

    from django.utils import timezone

    if ARGS.custom_metrics:
        for ws in workspaces.values():
            define_metrics(ws.id)

    for name, customers, events in [] if ARGS.api_only else plans:
        ws = workspaces[name]
        now = timezone.now()
        floors = []
        print(f"load average before {name}: {os.getloadavg()[0]:.2f}", flush=True)
        with connection.cursor() as cursor:
            for _ in range(3):  # the machine is shared: the median of three, not one sample
                started = time.perf_counter()
                cursor.execute(
                    "SELECT customer_id, count(*) FROM events_event WHERE workspace_id = %s "
                    "AND timestamp >= %s AND timestamp < %s GROUP BY customer_id",
                    [ws.id, now - timedelta(days=30), now],
                )
                rows = len(cursor.fetchall())
                floors.append(time.perf_counter() - started)
        floor = statistics.median(floors)
        timings, cpus = [], []
        for _ in range(2):  # on a fresh database the first run notifies every first score
            started, cpu_started = time.perf_counter(), backend_cpu()
            scored = services.health_rollup(workspace_slug=name)
            timings.append(time.perf_counter() - started)
            cpus.append(backend_cpu() - cpu_started)
        print(
            f"{name}: {customers:,} customers / {events:,} events: floor GROUP BY median {floor:.2f}s "
            f"({', '.join(f'{value:.2f}' for value in floors)}; {rows:,} groups); "
            f"rollup (rescore + snapshot) first {timings[0]:.2f}s, second {timings[1]:.2f}s "
            f"= {timings[1] / floor:.1f}x floor; {scored:,} scored; second rollup's backend CPU {cpus[1]:.2f}s "
            "(without parallel workers)",
            flush=True,
        )
        if rescore_sql.LAST_TIMINGS:  # the set-based path ran: where its time went
            steps = ", ".join(f"{step} {seconds:.2f}s" for step, seconds in rescore_sql.LAST_TIMINGS)
            print(f"  {name} second rollup per statement: {steps}", flush=True)
            if getattr(rescore_sql, "LAST_CPU", None):
                cpu = ", ".join(
                    f"{step} {seconds:.2f}s"
                    for (step, _), seconds in zip(rescore_sql.LAST_TIMINGS, rescore_sql.LAST_CPU, strict=True)
                )
                print(
                    f"  {name} second rollup, backend CPU per statement (without parallel workers): {cpu}; "
                    f"total {sum(rescore_sql.LAST_CPU):.2f}s; load average now {os.getloadavg()[0]:.2f}",
                    flush=True,
                )
    if ARGS.cohort_requests:
        cohort_timings(workspaces["big"], connection)
    if ARGS.no_api:
        finish(connection)
        return

    # A full rollup rewrites every customer row; autovacuum would clean up after it. Do it now so
    # the read timings reflect a steady state, not a table with one dead tuple per live one.
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE customers_customer, health_customerhealth, health_healthsnapshot")
    print(f"vacuum analyze after the rollups: {time.perf_counter() - started:.1f}s", flush=True)

    _, secret = api_key_create(workspace=workspaces["big"], scopes="health:read", rate_limit_read=1_000_000)
    client = Client(HTTP_AUTHORIZATION=f"Bearer {secret}")
    for label, path in (
        ("summary", "/v1/health/summary"),
        ("summary?plan=growth", "/v1/health/summary?plan=growth"),
        ("at-risk", "/v1/health/at-risk"),
        ("at-risk page 50", None),
    ):
        if path is None:
            cursor_id = client.get("/v1/health/at-risk?limit=100").json()["data"][-1]["customer"]["id"]
            path = f"/v1/health/at-risk?limit=50&starting_after={cursor_id}"
        samples = []
        cold = None
        for _ in range(ARGS.requests):
            started = time.perf_counter()
            response = client.get(path)
            samples.append((time.perf_counter() - started) * 1000)
            cold = samples[0] if cold is None else cold
            assert response.status_code == 200, response.content
        samples.sort()
        p95 = samples[int(len(samples) * 0.95) - 1]
        print(
            f"{label}: first (cold) {cold:.1f} ms, p50 {statistics.median(samples):.1f} ms, "
            f"p95 {p95:.1f} ms ({ARGS.requests} requests)"
        )

    finish(connection)


CUSTOM_METRICS = [
    *(
        {"key": f"custom.type{n}_28d", "aggregate": "count", "event_types": [f"type{n}"], "window_days": 28}
        for n in range(5)
    ),
    {"key": "custom.active_14d", "aggregate": "active_days", "window_days": 14},
    {"key": "custom.users_7d", "aggregate": "distinct_users", "window_days": 7},
    {"key": "custom.amount_28d", "aggregate": "sum", "property": "amount", "window_days": 28},
    {
        "key": "custom.type0_share",
        "aggregate": "ratio",
        "numerator": "custom.type0_28d",
        "denominator": "custom.type1_28d",
    },
    {"key": "custom.type0_change", "aggregate": "change", "metric": "custom.type0_28d"},
]


def define_metrics(workspace_id: str) -> None:
    """The 10 metrics of the issue's budget (percentile curves, so every one is ranked), each
    weighted so it is part of the composite. Their rescore tasks are not run (no worker here)."""
    from health import services
    from health.models import Metric

    if Metric.objects.filter(workspace_id=workspace_id).exists():
        return
    for definition in CUSTOM_METRICS:
        services.metric_create(
            workspace_id=workspace_id, data={"label": definition["key"], "category": "usage", **definition}
        )
    services.health_model_update(
        workspace_id=workspace_id, weights={definition["key"]: 5.0 for definition in CUSTOM_METRICS}
    )


def cohort_timings(workspace, connection) -> None:
    from datetime import timedelta

    from django.test import Client
    from django.utils import timezone

    from perly.apikeys import api_key_create

    _, secret = api_key_create(workspace=workspace, scopes="health:read", rate_limit_read=1_000_000)
    client = Client(HTTP_AUTHORIZATION=f"Bearer {secret}")
    as_of = (timezone.now() - timedelta(days=31)).date().isoformat()
    from health import generation

    for key in ("custom.type0_28d", "custom.type0_change", "usage.active_days_30d", "score"):
        # Uncached: a new scoring generation before each request (what a rescore does); then
        # cached: the same request again, as a dashboard reloading the chart makes it.
        timings = {"uncached": [], "cached": []}
        response = None
        for _ in range(ARGS.cohort_requests):
            for kind in ("uncached", "cached"):
                if kind == "uncached":
                    generation.bump(workspace.id)
                started = time.perf_counter()
                response = client.get(
                    f"/v1/health/metrics/{key}/cohorts?as_of={as_of}&horizon_days=30&groups=10"
                )
                timings[kind].append((time.perf_counter() - started) * 1000)
            if response.status_code == 404:
                break  # --custom-metrics not given
            assert response.status_code == 200, response.content
        parts = []
        for kind, samples in timings.items():
            samples.sort()
            p95 = samples[max(int(len(samples) * 0.95) - 1, 0)]
            parts.append(f"{kind} p50 {statistics.median(samples):.0f} ms, p95 {p95:.0f} ms")
        print(
            f"cohorts {key}: {'; '.join(parts)} ({len(timings['cached'])} requests each, "
            f"{response.json().get('observations')} observations)",
            flush=True,
        )


def finish(connection) -> None:
    if not ARGS.keep:
        connection.close()
        admin_sql(ARGS.pg, f"DROP DATABASE IF EXISTS {ARGS.db}")


if __name__ == "__main__":
    main()
