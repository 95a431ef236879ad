"""Churn fit benchmark (issue 15): does a score fitted to a workspace's churn rank churners as well
as a logistic regression fitted directly to the same behaviour?

Usage:
    .venv/bin/python benchmarks/health/churn_fit.py [--customers 10000] [--seed 15]

What it runs today, in memory (no database, no server):
1. generate(): a synthetic workspace of 10,000 customers over 6 months (182 days) and 8 event
   types. 70% of the customers exist on day 0, the rest arrive over the first 120 days. Each
   customer has a daily rate per type (a shared engagement level times a per-type taste) that
   drifts month to month. At each month start a live customer churns with the probability of a
   hidden utility: the log 28-day counts of some types lower it, of others raise it, plus noise,
   calibrated so that 5% of the live customers churn each month; the churn day falls in the month
   that follows, and the customer's events stop there.
2. observe(): 12 observation dates ten days apart (days 41 to 151, each with its 30-day horizon
   inside the data). A customer counts at a date when it was created by then and had not churned;
   its label is a churn within the 30 days after. Features: the 28-day count per event type.
3. The direct regression: a plain scikit-learn LogisticRegression on log(1 + count) per type,
   its in-sample AUC, its AUC over the same 5 customer-grouped folds the fit uses, and its time.
4. The default model: the built-in event signals and composite of today's scoring code
   (health.signals.event_signals, health.scoring.compute_score with the default weights) fed with
   day-grain aggregates of the same events; its AUC (no target).
5. The fit: health.fitting.fit_model on per-type percentile scores (0-100, ties at the mean rank,
   ranked per date), the stand-in for a `count` metric per type with a percentile curve; its
   cv_auc, the in-sample AUC of the proposed composite (the stand-in for the backtest of the
   applied fit) and its time.

6. The database run (the default; `--in-memory` runs steps 4-5 instead): the same workspace is
   stored in a scratch PostgreSQL database (`--db`, dropped and recreated; customers created on
   their day, `counts` expanded into event rows at random times of their day, `churn_day` as churn
   outcomes at noon), a 28-day `count` metric per event type is defined through the metrics
   service, and the real jobs run back to back through their Celery tasks (eager, in this
   process): a backtest of the default model, a fit (every signal with data), its apply (a new
   model version and a rescore), and a backtest of the applied fit, all on the 12 dates above with
   a 30-day horizon. Targets: the applied fit's backtest AUC at least the direct regression's minus
   0.02; the fit job under 60 s at 10,000 customers x 12 dates.

Usage for the database run: PostgreSQL on 127.0.0.1 with trust auth (`--pg`), Redis for the cache
(`REDIS_URL`, default db 8).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock
from pathlib import Path

import django
import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

# The default model's formulas, in Python, live in the tests' oracle (the rescore itself is SQL).
# The oracle imports Django models, so Django is set up; no database or Redis is contacted.
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "perly.settings")
os.environ.setdefault("SECRET_KEY", "bench-only-secret-key-0123456789abcdef")
PG = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432")
DB = os.environ.get("BENCH_DB", "perly_churn_bench")
os.environ["DATABASE_URL"] = f"{PG}/{DB}"
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/8")
django.setup()

from health.evaluation import auc, average_ranks, backtest_result  # noqa: E402
from health.fitting import customer_folds, fit_model, observations_from_rows, proposed_scores  # noqa: E402
from health.signals import default_weights  # noqa: E402
from tests.health.oracle import EventAggregates, compute_score, event_signals  # noqa: E402

DAYS = 182
MONTH = 30
WINDOW = 28
HORIZON = 30
OBSERVATION_DAYS = tuple(41 + 10 * index for index in range(12))
MONTHLY_CHURN = 0.05
# The data ends today, so the last observation date (day 151) is 31 days back: its horizon has passed.
START = datetime.combine(date.today() - timedelta(days=DAYS), clock.min, tzinfo=UTC)

# (event type, mean daily rate, effect of log(1 + 28-day count) on the churn utility): negative
# effects keep customers, positive ones push them out; api_call is pure noise.
EVENT_TYPES = (
    ("page_view", 1.0, -0.2),
    ("login", 0.5, -0.6),
    ("report_exported", 0.1, -0.9),
    ("user_invited", 0.03, -0.8),
    ("api_call", 0.4, 0.0),
    ("support_ticket", 0.04, 0.8),
    ("error_shown", 0.15, 0.5),
    ("billing_page_viewed", 0.04, 0.6),
)
UTILITY_NOISE = 0.5


@dataclass(frozen=True)
class SyntheticWorkspace:
    types: tuple[str, ...]
    created_day: np.ndarray  # (customers,)
    churn_day: np.ndarray  # (customers,), DAYS when the customer never churned
    counts: np.ndarray  # (customers, DAYS, types) events per customer, day and type

    def churned_at(self, customer: int) -> datetime | None:
        """When the customer churned, as the outcome the database version will store."""
        day = int(self.churn_day[customer])
        return None if day >= DAYS else START + timedelta(days=day, hours=12)


def _churn_intercept(utility: np.ndarray, rate: float) -> float:
    """The intercept that makes the mean churn probability `rate` (bisection: it is monotone)."""
    low, high = -20.0, 20.0
    for _ in range(60):
        middle = (low + high) / 2
        if np.mean(1 / (1 + np.exp(-(middle + utility)))) < rate:
            low = middle
        else:
            high = middle
    return (low + high) / 2


def generate(customers: int, seed: int) -> SyntheticWorkspace:
    rng = np.random.default_rng(seed)
    names = tuple(name for name, _, _ in EVENT_TYPES)
    base_rate = np.array([rate for _, rate, _ in EVENT_TYPES])
    effect = np.array([value for _, _, value in EVENT_TYPES])
    created = np.where(rng.random(customers) < 0.7, 0, rng.integers(0, 121, size=customers))
    engagement = rng.normal(0, 0.6, size=(customers, 1))
    taste = rng.normal(0, 0.5, size=(customers, len(names)))
    rate = base_rate * np.exp(engagement + taste - (0.6**2 + 0.5**2) / 2)  # keeps the mean rate
    drift = np.ones((customers, 1))
    churn_day = np.full(customers, DAYS)
    counts = np.zeros((customers, DAYS, len(names)), dtype=np.int16)
    for month_start in range(0, DAYS, MONTH):
        if month_start > 0:
            live = (created < month_start) & (churn_day >= DAYS)
            window = counts[:, month_start - WINDOW : month_start, :].sum(axis=1)
            utility = np.log1p(window) @ effect + rng.normal(0, UTILITY_NOISE, size=customers)
            intercept = _churn_intercept(utility[live], MONTHLY_CHURN)
            leaving = live & (rng.random(customers) < 1 / (1 + np.exp(-(intercept + utility))))
            churn_day[leaving] = month_start + rng.integers(0, MONTH, size=int(leaving.sum()))
            drift *= np.exp(rng.normal(0, 0.3, size=(customers, 1)))
        days = np.arange(month_start, min(month_start + MONTH, DAYS))
        alive = (days[None, :] >= created[:, None]) & (days[None, :] < churn_day[:, None])
        expected = (rate * drift)[:, None, :] * alive[:, :, None]
        counts[:, days, :] = rng.poisson(expected).astype(np.int16)
    return SyntheticWorkspace(names, created, churn_day, counts)


@dataclass(frozen=True)
class ObservationSet:
    customer: np.ndarray  # (n,) customer index
    day: np.ndarray  # (n,) observation day (as of its end)
    counts_28d: np.ndarray  # (n, types)
    churned: np.ndarray  # (n,) churn within HORIZON days after the day


def observe(workspace: SyntheticWorkspace) -> ObservationSet:
    cumulative = np.concatenate(
        [
            np.zeros((len(workspace.created_day), 1, len(workspace.types)), dtype=np.int32),
            workspace.counts.cumsum(axis=1, dtype=np.int32),
        ],
        axis=1,
    )
    parts = []
    for day in OBSERVATION_DAYS:
        counted = np.flatnonzero((workspace.created_day <= day) & (workspace.churn_day > day))
        window = cumulative[counted, day + 1, :] - cumulative[counted, day + 1 - WINDOW, :]
        churned = workspace.churn_day[counted] <= day + HORIZON
        parts.append((counted, np.full(len(counted), day), window, churned))
    return ObservationSet(*(np.concatenate([part[i] for part in parts]) for i in range(4)))


def percentile_scores(observations: ObservationSet) -> np.ndarray:
    """Per date and type: 100 * (mean rank - 1) / (customers - 1), the percentile curve's stand-in."""
    scores = np.empty(observations.counts_28d.shape, dtype=float)
    for day in OBSERVATION_DAYS:
        rows = np.flatnonzero(observations.day == day)
        for column in range(scores.shape[1]):
            ranks = average_ranks(observations.counts_28d[rows, column].astype(float))
            scores[rows, column] = 100.0 * (ranks - 1) / max(1, len(rows) - 1)
    return scores


def direct_regression(observations: ObservationSet) -> dict:
    from sklearn.linear_model import LogisticRegression

    features = np.log1p(observations.counts_28d)
    labels = observations.churned
    started, cpu_started = time.perf_counter(), time.process_time()
    model = LogisticRegression(max_iter=1000).fit(features, labels)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    in_sample = auc(-model.decision_function(features), labels)
    fold_aucs = []
    for train, test in customer_folds(observations.customer, labels):
        fold = LogisticRegression(max_iter=1000).fit(features[train], labels[train])
        fold_aucs.append(auc(-fold.decision_function(features[test]), labels[test]))
    return {"auc": in_sample, "cv_auc": float(np.mean(fold_aucs)), "seconds": seconds, "cpu": cpu}


def default_model_scores(workspace: SyntheticWorkspace, observations: ObservationSet) -> np.ndarray:
    """The default model's score per observation from today's scoring code (NaN: unscored).
    Day grain: every event of a day is taken at its noon, so recency is in whole days + 0.5."""
    daily = workspace.counts.sum(axis=2, dtype=np.int32)
    totals = np.concatenate([np.zeros((len(daily), 1), dtype=np.int32), daily.cumsum(axis=1)], axis=1)
    active = np.concatenate([np.zeros((len(daily), 1), dtype=np.int32), (daily > 0).cumsum(axis=1)], axis=1)
    last_day = np.maximum.accumulate(np.where(daily > 0, np.arange(DAYS)[None, :], -1), axis=1)
    weights = default_weights()
    scores = np.full(len(observations.day), np.nan)
    for row, (customer, day) in enumerate(zip(observations.customer, observations.day, strict=True)):
        end = day + 1
        last = last_day[customer, day]
        if last < 0:
            continue
        window = workspace.counts[customer, max(0, end - 30) : end, :].sum(axis=0)
        aggregates = EventAggregates(
            active_days=int(active[customer, end] - active[customer, max(0, end - 30)]),
            recent_14d=int(totals[customer, end] - totals[customer, max(0, end - 14)]),
            previous_14d=int(totals[customer, max(0, end - 14)] - totals[customer, max(0, end - 28)]),
            types_30d=int((window > 0).sum()),
            last_event_at=START + timedelta(days=int(last), hours=12),
        )
        signals = event_signals(aggregates, START + timedelta(days=int(end)))
        scores[row] = compute_score(signals, weights).score
    return scores


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument("--in-memory", action="store_true", help="Steps 4-5 in memory, no database.")
    parser.add_argument("--keep", action="store_true", help="Keep the scratch database afterwards.")
    args = parser.parse_args()

    started = time.perf_counter()
    workspace = generate(args.customers, args.seed)
    observations = observe(workspace)
    churned_ever = int((workspace.churn_day < DAYS).sum())
    print(
        f"workspace: {args.customers:,} customers, {int(workspace.counts.sum()):,} events over {DAYS} days, "
        f"{len(workspace.types)} types, {churned_ever:,} churned "
        f"({time.perf_counter() - started:.1f} s to generate and observe)"
    )
    print(
        f"observations: {len(observations.day):,} at {len(OBSERVATION_DAYS)} dates, "
        f"{int(observations.churned.sum()):,} churned within {HORIZON} days "
        f"(rate {observations.churned.mean():.3f})"
    )

    direct = direct_regression(observations)
    print(
        f"direct regression (log counts): AUC {direct['auc']:.4f}, grouped 5-fold AUC {direct['cv_auc']:.4f}, "
        f"fit {direct['seconds']:.2f} s ({direct['cpu']:.2f} s CPU)"
    )

    if not args.in_memory:
        try:
            database_run(workspace, direct)
        finally:
            if not args.keep:
                drop_database()
        return

    started = time.perf_counter()
    default_scores = default_model_scores(workspace, observations)
    present = ~np.isnan(default_scores)
    default_auc = auc(default_scores[present], observations.churned[present])
    print(
        f"default model (built-in event signals): AUC {default_auc:.4f} on {int(present.sum()):,} scored "
        f"observations ({time.perf_counter() - started:.1f} s to score)"
    )

    scores = percentile_scores(observations)
    rows = (
        (int(customer), dict(zip(workspace.types, row, strict=True)), bool(label))
        for customer, row, label in zip(observations.customer, scores, observations.churned, strict=True)
    )
    fit_input = observations_from_rows(rows, workspace.types)
    started, cpu_started = time.perf_counter(), time.process_time()
    fit = fit_model(fit_input)
    fit_seconds, fit_cpu = time.perf_counter() - started, time.process_time() - cpu_started
    composite = proposed_scores(fit, fit_input)
    print(
        f"fit (percentile scores): cv_auc {fit.cv_auc:.4f}, proposed composite AUC {auc(composite, fit_input.churned):.4f}, "
        f"fit with 5-fold CV {fit_seconds:.2f} s ({fit_cpu:.2f} s CPU)"
    )
    print(f"  flipped: {', '.join(fit.flipped) or 'none'}; thresholds {fit.thresholds}")
    print("  weights: " + ", ".join(f"{key} {weight:.1f}" for key, weight in fit.weights.items()))
    started = time.perf_counter()
    backtest = backtest_result(
        composite,
        fit_input.churned,
        healthy=fit.thresholds["healthy"],
        at_risk=fit.thresholds["at_risk"],
        signals={key: fit_input.scores[:, index] for index, key in enumerate(fit_input.keys)},
    )
    rates = backtest["churn_rate_by_status"]
    print(
        f"  backtest measures of the proposal ({time.perf_counter() - started:.2f} s): "
        f"lift_bottom_decile {backtest['lift_bottom_decile']}, churn rate "
        + ", ".join(f"{status} {row['churn_rate']} ({row['customers']:,})" for status, row in rates.items())
    )
    print("  signal AUCs: " + ", ".join(f"{key} {row['auc']}" for key, row in backtest["signals"].items()))
    if not math.isfinite(fit.cv_auc or math.nan):
        raise SystemExit("the fit measured no cv_auc")


def load(workspace: SyntheticWorkspace) -> str:
    """The synthetic workspace in a fresh scratch database; returns its workspace id."""
    import subprocess

    from benchmarks.support import admin_sql

    admin_sql(PG, f'DROP DATABASE IF EXISTS "{DB}"')
    admin_sql(PG, f'CREATE DATABASE "{DB}"')
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, check=True)
    from django.db import connection

    from customers.models import Customer, Outcome
    from perly.services import workspace_create

    started = time.perf_counter()
    ws = workspace_create(slug="churn", name="Churn benchmark")
    customers = Customer.objects.bulk_create(
        [
            Customer(
                workspace_id=ws.id, name=f"Customer {index}", created_at=START + timedelta(days=int(day))
            )
            for index, day in enumerate(workspace.created_day)
        ],
        batch_size=2000,
    )
    ids = [customer.pk for customer in customers]
    Outcome.objects.bulk_create(
        [
            Outcome(
                workspace_id=ws.id,
                customer_id=ids[index],
                kind="churned",
                at=workspace.churned_at(index),
                source="api",
            )
            for index in np.flatnonzero(workspace.churn_day < DAYS)
        ],
        batch_size=2000,
    )
    customer, day, kind = np.nonzero(workspace.counts)
    count = workspace.counts[customer, day, kind]
    lines = "".join(
        f"{ids[c]}\t{d}\t{workspace.types[k]}\t{n}\n"
        for c, d, k, n in zip(customer.tolist(), day.tolist(), kind.tolist(), count.tolist(), strict=True)
    )
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE events_event SET UNLOGGED")  # scratch data: skip WAL while loading
        cursor.execute("CREATE TEMP TABLE bench_counts (customer_id text, day int, type text, n int)")
        with cursor.cursor.copy("COPY bench_counts FROM STDIN") as copy:
            copy.write(lines)
        cursor.execute(
            "INSERT INTO events_event (id, workspace_id, customer_id, type, timestamp, properties, received_at) "
            "SELECT 'evt_' || substr(md5(random()::text || g::text), 1, 28), %s, b.customer_id, b.type, "
            "%s::timestamptz + b.day * interval '1 day' + floor(random() * 86400) * interval '1 second', "
            "'{}'::jsonb, now() FROM bench_counts b, generate_series(1, b.n) g",
            [ws.id, START],
        )
        events = cursor.rowcount
        cursor.execute("DROP TABLE bench_counts")
        cursor.execute("ANALYZE")
    print(
        f"database {DB}: {len(ids):,} customers, {events:,} events, "
        f"{int((workspace.churn_day < DAYS).sum()):,} churn outcomes ({time.perf_counter() - started:.1f} s to load)",
        flush=True,
    )
    return ws.id


def drop_database() -> None:
    from django.db import connections

    from benchmarks.support import admin_sql

    connections.close_all()
    admin_sql(PG, f'DROP DATABASE IF EXISTS "{DB}"')


def database_run(workspace: SyntheticWorkspace, direct: dict) -> None:
    from health import backtests, services
    from health.models import Backtest, ModelFit
    from perly.celery import app

    app.conf.task_always_eager = True  # the jobs' tasks run here, as a worker would run them
    app.conf.task_eager_propagates = True
    workspace_id = load(workspace)
    started = time.perf_counter()
    for name in workspace.types:
        services.metric_create(
            workspace_id=workspace_id,
            data={
                "key": f"custom.{name}_28d",
                "label": f"{name} (28 days)",
                "category": "usage",
                "aggregate": "count",
                "event_types": [name],
                "window_days": WINDOW,
            },
            created_by="benchmark",
        )
    print(
        f"{len(workspace.types)} count metrics defined, each a version and a rescore ({time.perf_counter() - started:.1f} s)"
    )
    dates = [(START + timedelta(days=day)).date().isoformat() for day in OBSERVATION_DAYS]
    inputs = {"observation_dates": dates, "horizon_days": HORIZON}

    def backtest(label: str) -> dict:
        started = time.perf_counter()
        job = backtests.backtest_create(workspace_id=workspace_id, data=inputs)
        seconds = time.perf_counter() - started
        result = backtests.backtest_representation(Backtest.objects.get(pk=job.pk))
        if result["status"] != "succeeded":
            raise SystemExit(f"{label} backtest {result['status']}: {result['error']}")
        rates = ", ".join(
            f"{status} {row['churn_rate']} ({row['customers']:,})"
            for status, row in result["churn_rate_by_status"].items()
        )
        print(
            f"backtest of the {label}: AUC {result['auc']:.4f} on {result['observations']:,} observations "
            f"({result['churned']:,} churned), lift_bottom_decile {result['lift_bottom_decile']}, {rates}; {seconds:.1f} s"
        )
        return {**result, "seconds": seconds}

    default = backtest("default model")
    started = time.perf_counter()
    job = backtests.fit_create(workspace_id=workspace_id, data=inputs)
    fit_seconds = time.perf_counter() - started
    fit = backtests.fit_representation(ModelFit.objects.get(pk=job.pk))
    if fit["status"] != "succeeded":
        raise SystemExit(f"fit {fit['status']}: {fit['error']}")
    print(
        f"fit: cv_auc {fit['cv_auc']:.4f}, current_model_auc {fit['current_model_auc']:.4f} on "
        f"{fit['observations']:,} observations; the job (12 as-of scorings + the fit) {fit_seconds:.1f} s"
    )
    print(f"  flipped: {', '.join(fit['flipped']) or 'none'}; dropped: {', '.join(fit['dropped']) or 'none'}")
    print(f"  thresholds {fit['proposed_model']['thresholds']}")
    print(
        "  weights: "
        + ", ".join(f"{key} {weight:.1f}" for key, weight in fit["proposed_model"]["weights"].items())
    )
    started = time.perf_counter()
    model = backtests.fit_apply(workspace_id=workspace_id, fit_id=fit["id"])
    print(f"applied as model v{model.version} and rescored ({time.perf_counter() - started:.1f} s)")
    applied = backtest("applied fit")
    print()
    print("| measure | AUC | time |")
    print("|---|---|---|")
    print(
        f"| direct scikit-learn regression (log counts, in-sample) | {direct['auc']:.4f} | {direct['seconds']:.2f} s |"
    )
    print(f"| backtest of the default model | {default['auc']:.4f} | {default['seconds']:.1f} s |")
    print(f"| fit, cv_auc | {fit['cv_auc']:.4f} | {fit_seconds:.1f} s |")
    print(f"| backtest of the applied fit | {applied['auc']:.4f} | {applied['seconds']:.1f} s |")
    gap = applied["auc"] - direct["auc"]
    print(
        f"target applied >= direct - 0.02: {'met' if gap >= -0.02 else 'MISSED'} ({gap:+.4f}); "
        f"target fit < 60 s: {'met' if fit_seconds < 60 else 'MISSED'} ({fit_seconds:.1f} s)"
    )


if __name__ == "__main__":
    main()
