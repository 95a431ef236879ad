"""Where a Stripe sync's PostgreSQL time goes: sync N fake customers into a fresh scratch database
and attribute the backend's CPU time (/proc ticks, read around every statement and commit) to
statement kinds (their first words). Load-independent, unlike wall times on a shared machine.

    REDIS_URL=redis://127.0.0.1:6379/9 .venv/bin/python benchmarks/integrations/statement_cpu.py --customers 10000

The database (default postgres://postgres@127.0.0.1:5432/perly_integ_stmt) is dropped and
recreated. Network: 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/perly_integ_stmt")
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args()

    from bench_stripe_sync import backend_cpu_seconds, setup, stripe_integration

    setup(args.database_url, fresh=True)
    from django.db import connection
    from django.db.backends import utils
    from django.db.backends.base.base import BaseDatabaseWrapper
    from django.test import override_settings

    from integrations import sync
    from tests.integrations.fakes.stripe import FakeStripe

    key = "sk_test_benchmarkbenchmarkbench03"
    fake = FakeStripe(api_keys=(key,))
    now = int(time.time())
    for i in range(args.customers):
        customer = fake.add_customer(
            email=f"billing@co{i}.example.com", name=f"Co {i}", created=now - 10 * 86400 - i
        )
        fake.add_subscription(customer["id"], unit_amount=1000 + i % 50 * 100, created=customer["created"])
        fake.add_invoice(customer["id"], created=customer["created"])
    fake.start()
    workspace, integration, run = stripe_integration(f"stmt-{now}", "Statement CPU", key)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    spent: dict[str, list] = defaultdict(lambda: [0, 0.0])

    def account(kind: str, started: float) -> None:
        entry = spent[kind]
        entry[0] += 1
        entry[1] += backend_cpu_seconds(pid) - started

    execute, commit = utils.CursorWrapper._execute, BaseDatabaseWrapper._commit

    def timed_execute(self, sql, params, *rest):
        started = backend_cpu_seconds(pid)
        try:
            return execute(self, sql, params, *rest)
        finally:
            account(" ".join(sql.split()[:4])[:70], started)

    def timed_commit(self):
        started = backend_cpu_seconds(pid)
        try:
            return commit(self)
        finally:
            account("COMMIT", started)

    utils.CursorWrapper._execute, BaseDatabaseWrapper._commit = timed_execute, timed_commit
    total_started = backend_cpu_seconds(pid)
    with override_settings(STRIPE_API_BASE=fake.url):
        outcome = sync.execute(run.pk)
    fake.stop()
    print(
        f"{outcome}: backend CPU {backend_cpu_seconds(pid) - total_started:.2f} s, load {os.getloadavg()[0]:.1f}"
    )
    for kind, (count, seconds) in sorted(spent.items(), key=lambda item: -item[1][1])[: args.top]:
        print(f"{seconds:7.2f} s {count:6d}  {kind}")


if __name__ == "__main__":
    main()
