"""Every health write: external signals, the scoring model, rescoring, history, purges."""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from customers.models import Customer
from health import dirty, metrics
from health.models import CustomerHealth, DirtyCustomer, ExternalSignal, HealthModel, HealthSnapshot, Metric
from health.rescore import rescore
from health.signals import CATALOG, CATEGORIES, EVENT_SIGNAL_KEYS, default_weights
from perly.errors import ApiError
from perly.models import Workspace

logger = logging.getLogger("perly.health")

PURGE_BATCH = 5000
# Weights are relative; a bound keeps their sums finite (1e308 + 1e308 is infinity).
MAX_WEIGHT = 1_000_000


# --- The model --------------------------------------------------------------------------------


def health_model_current(*, workspace_id: str) -> HealthModel:
    """The workspace's newest model version; version 1 (the defaults) is created on first use."""
    model = HealthModel.objects.filter(workspace_id=workspace_id).order_by("-version").first()
    if model is not None:
        return model
    try:
        with transaction.atomic():
            return HealthModel.objects.create(
                workspace_id=workspace_id, version=1, weights=default_weights(), created_by="default"
            )
    except IntegrityError:  # a concurrent first use created it
        return HealthModel.objects.filter(workspace_id=workspace_id).order_by("-version").first()


def _invalid(param: str, message: str) -> ApiError:
    return ApiError(400, "parameter_invalid", message, param=param)


def health_model_update(
    *,
    workspace_id: str,
    weights: dict[str, float] | None = None,
    healthy_threshold: float | None = None,
    at_risk_threshold: float | None = None,
    created_by: str = "",
) -> tuple[HealthModel, bool]:
    """Create a new model version from the current one plus these changes, and rescore the
    workspace in a task after commit. Returns (model, created); identical values create nothing.

    `weights` replaces the weights of the keys it names; other keys keep theirs."""
    with transaction.atomic():
        # The lock serializes concurrent updates so versions stay gapless and unique.
        Workspace.objects.select_for_update().filter(pk=workspace_id).first()
        current = health_model_current(workspace_id=workspace_id)
        new_weights = dict(current.weights)
        known = set(CATALOG) | {definition["key"] for definition in current.metrics}
        for key, weight in (weights or {}).items():
            if key not in known:
                raise _invalid(f"weights[{key}]", f"Unknown signal key: '{key}'.")
            if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not math.isfinite(weight):
                raise _invalid(f"weights[{key}]", "Weights must be numbers.")
            if not 0 <= weight <= MAX_WEIGHT:
                raise _invalid(f"weights[{key}]", f"Weights must be from 0 to {MAX_WEIGHT:,}.")
            new_weights[key] = float(weight)
        healthy = current.healthy_threshold if healthy_threshold is None else float(healthy_threshold)
        at_risk = current.at_risk_threshold if at_risk_threshold is None else float(at_risk_threshold)
        if not 0 <= at_risk < healthy <= 100:
            raise _invalid("thresholds", "Thresholds must satisfy 0 <= at_risk < healthy <= 100.")
        if sum(new_weights.values()) <= 0:
            raise _invalid("weights", "At least one weight must be above zero.")
        if (new_weights, healthy, at_risk) == (
            current.weights,
            current.healthy_threshold,
            current.at_risk_threshold,
        ):
            return current, False
        model = HealthModel.objects.create(
            workspace_id=workspace_id,
            version=current.version + 1,
            weights=new_weights,
            metrics=current.metrics,
            healthy_threshold=healthy,
            at_risk_threshold=at_risk,
            created_by=created_by,
        )
        transaction.on_commit(lambda: _enqueue_workspace_rescore(workspace_id))
    return model, True


# --- Workspace-defined metrics -------------------------------------------------------------------


def _metric_errors(exc: metrics.MetricError) -> ApiError:
    return ApiError(
        400,
        "parameter_invalid",
        exc.errors[0][1],
        param=exc.errors[0][0],
        errors=[
            {"param": param, "code": "parameter_invalid", "message": message} for param, message in exc.errors
        ],
    )


def metric_missing(key: str) -> ApiError:
    return ApiError(404, "resource_missing", f"No such metric: '{key}'.", param="key")


def _new_metrics_version(
    current: HealthModel, definitions: dict[str, dict], *, created_by: str
) -> HealthModel:
    """The next model version with these metric definitions; a new metric weighs 0 until the
    model gives it a weight (so defining one changes no score), a deleted one leaves the weights."""
    weights = {key: weight for key, weight in current.weights.items() if key in CATALOG or key in definitions}
    for key in definitions:
        weights.setdefault(key, 0.0)
    model = HealthModel.objects.create(
        workspace_id=current.workspace_id,
        version=current.version + 1,
        weights=weights,
        metrics=[definitions[key] for key in sorted(definitions)],
        healthy_threshold=current.healthy_threshold,
        at_risk_threshold=current.at_risk_threshold,
        created_by=created_by,
    )
    workspace_id = current.workspace_id
    transaction.on_commit(lambda: _enqueue_workspace_rescore(workspace_id))
    return model


def _locked_metrics(workspace_id: str) -> tuple[HealthModel, dict[str, Metric]]:
    # The workspace lock serializes metric and model changes, so versions stay gapless.
    Workspace.objects.select_for_update().filter(pk=workspace_id).first()
    current = health_model_current(workspace_id=workspace_id)
    rows = {row.key: row for row in Metric.objects.filter(workspace_id=workspace_id)}
    return current, rows


def metric_create(*, workspace_id: str, data: dict, created_by: str = "") -> tuple[Metric, HealthModel]:
    """Define a metric: a new model version that computes it, and a rescore in a task."""
    with transaction.atomic():
        current, rows = _locked_metrics(workspace_id)
        others = {key: row.definition for key, row in rows.items()}
        try:
            definition = metrics.validate(data, others=others)
        except metrics.MetricError as exc:
            raise _metric_errors(exc) from None
        if definition["key"] in rows:
            raise ApiError(
                409, "resource_already_exists", f"A metric {definition['key']!r} already exists.", param="key"
            )
        if len(rows) >= metrics.MAX_METRICS:
            raise ApiError(
                400,
                "parameter_invalid",
                f"A workspace can define at most {metrics.MAX_METRICS} metrics.",
                param="key",
            )
        row = Metric.objects.create(workspace_id=workspace_id, key=definition["key"], definition=definition)
        model = _new_metrics_version(current, {**others, row.key: definition}, created_by=created_by)
    return row, model


def metric_update(
    *, workspace_id: str, key: str, data: dict, created_by: str = ""
) -> tuple[Metric, HealthModel]:
    """Change a metric (the merged definition is validated whole); identical values change nothing."""
    with transaction.atomic():
        current, rows = _locked_metrics(workspace_id)
        row = rows.get(key)
        if row is None:
            raise metric_missing(key)
        others = {other: r.definition for other, r in rows.items() if other != key}
        try:
            definition = metrics.validate(data, others=others, current=row.definition)
        except metrics.MetricError as exc:
            raise _metric_errors(exc) from None
        if definition["aggregate"] in metrics.DERIVED_AGGREGATES and metrics.dependants(key, others):
            users = ", ".join(metrics.dependants(key, others))
            raise _metric_errors(
                metrics.MetricError(
                    [("aggregate", f"{key} is an operand of {users}, so it must stay an aggregate.")]
                )
            )
        if definition == row.definition:
            return row, current
        row.definition = definition
        row.updated_at = timezone.now()
        row.save(update_fields=["definition", "updated_at"])
        model = _new_metrics_version(current, {**others, key: definition}, created_by=created_by)
    return row, model


def metric_delete(*, workspace_id: str, key: str, created_by: str = "") -> HealthModel:
    """Delete a metric (409 while another metric uses it as an operand): a new model version."""
    with transaction.atomic():
        current, rows = _locked_metrics(workspace_id)
        row = rows.get(key)
        if row is None:
            raise metric_missing(key)
        others = {other: r.definition for other, r in rows.items() if other != key}
        users = metrics.dependants(key, others)
        if users:
            raise ApiError(
                409,
                "resource_in_use",
                f"{key} is an operand of {', '.join(users)}; change or delete those first.",
                param="key",
            )
        row.delete()
        return _new_metrics_version(current, others, created_by=created_by)


def metric_get(*, workspace_id: str, key: str) -> Metric:
    row = Metric.objects.filter(workspace_id=workspace_id, key=key).first()
    if row is None:
        raise metric_missing(key)
    return row


def _enqueue_workspace_rescore(workspace_id: str) -> None:
    from health.tasks import rescore_workspace

    try:
        rescore_workspace.apply_async((workspace_id,), retry=False)
    except Exception as exc:  # broker down: the nightly rollup rescores everyone anyway
        logger.warning("health: could not enqueue rescore_workspace for %s: %s", workspace_id, exc)


# --- External signals (integrations) -----------------------------------------------------------


def _validate_external(source: str, signals: list[dict]) -> None:
    if not source or len(source) > 50:
        raise ValueError("source must be 1 to 50 characters.")
    seen = set()
    for signal in signals:
        key = signal.get("key")
        if key not in CATALOG or key in EVENT_SIGNAL_KEYS:
            raise ValueError(f"Unknown external signal key: {key!r}.")
        if key in seen:
            raise ValueError(f"Signal key {key!r} given twice.")
        seen.add(key)
        if signal.get("category", CATALOG[key].category) not in CATEGORIES:
            raise ValueError(f"Unknown category for {key!r}: {signal.get('category')!r}.")
        score = signal.get("score")
        if isinstance(score, bool) or not isinstance(score, (int, float)) or not 0 <= score <= 100:
            raise ValueError(f"score of {key!r} must be a number from 0 to 100.")
        value = signal.get("value")
        # The batch travels as JSON, which has no NaN or infinity.
        if value is not None and (isinstance(value, bool) or not math.isfinite(float(value))):
            raise ValueError(f"value of {key!r} must be a finite number or null.")


def external_signals_upsert(*, workspace_id: str, customer_id: str, source: str, signals: list[dict]) -> int:
    """Replace `source`'s current signals for the customer with `signals` (a signal of that
    source missing from the list is removed), then mark the customer for rescoring.

    Each dict: key (a catalog key), category, label, value (float or None), unit, score (0-100).
    Returns the number of signals written; 0 (and nothing written) if the customer does not
    exist in the workspace (a sync may race a deletion). Raises ValueError on malformed input."""
    return external_signals_upsert_many(
        workspace_id=workspace_id, source=source, signals={customer_id: signals}
    )


def external_signals_upsert_many(*, workspace_id: str, source: str, signals: dict[str, list[dict]]) -> int:
    """The batch form for syncs: {customer_id: [signal, ...]} in one transaction, a constant
    number of queries, and one set-based rescore of all those customers after commit.

    Customers not in the workspace (or deleted) are skipped. Returns the signals written."""
    for items in signals.values():
        _validate_external(source, items)
    live = set(
        Customer.objects.filter(workspace_id=workspace_id, pk__in=list(signals)).values_list("pk", flat=True)
    )
    if len(live) < len(signals):
        logger.info("health: signals for %d unknown customer(s) ignored", len(signals) - len(live))
    if not live:
        return 0
    rows = [
        {
            "customer_id": customer_id,
            "key": signal["key"],
            "category": signal.get("category") or CATALOG[signal["key"]].category,
            "label": signal.get("label") or CATALOG[signal["key"]].label,
            "value": None if signal.get("value") is None else float(signal["value"]),
            "unit": signal.get("unit") if signal.get("unit") is not None else CATALOG[signal["key"]].unit,
            "score": float(signal["score"]),
        }
        for customer_id, items in signals.items()
        if customer_id in live
        for signal in items
    ]
    now = timezone.now()
    with transaction.atomic():
        # Replace semantics: the source's previous signals for these customers that are not in
        # the new set go, and the new ones are upserted (a key another source owned is taken over).
        _signals_replace(workspace_id, source, live, rows, now)
        transaction.on_commit(lambda: request_rescore(workspace_id, live))
    return len(rows)


def _signals_replace(workspace_id: str, source: str, live: set[str], rows: list[dict], now: datetime) -> None:
    """One statement, the batch as JSON parameters (jsonb_to_recordset): a CTE deletes the
    source's signals of these customers whose key is not in the customer's new set, and the
    batch is upserted on (customer_id, key). The two touch disjoint rows, so one snapshot serves
    both; the end state is that of deleting all of the source's signals, then upserting.

    The delete probes the (customer_id, key) index once per customer (a LATERAL subquery kept
    apart by OFFSET 0): as an `= ANY(...)` filter the planner, without fresh statistics (a table
    that grows during a first sync), scanned the whole table once per batch."""
    keys: dict[str, list[str]] = {customer_id: [] for customer_id in live}
    for row in rows:
        keys[row["customer_id"]].append(row["key"])
    table = ExternalSignal._meta.db_table
    sql = (
        "WITH new AS (SELECT * FROM jsonb_to_recordset(%s::jsonb) AS r(customer_id varchar, key varchar, "  # noqa: S608
        "category varchar, label varchar, value double precision, unit varchar, score double precision)), "
        f"gone AS (DELETE FROM {table} WHERE id IN (SELECT old.id FROM jsonb_to_recordset(%s::jsonb) "
        "AS c(customer_id varchar, keys jsonb) CROSS JOIN LATERAL "
        f"(SELECT x.id FROM {table} x WHERE x.customer_id = c.customer_id AND x.source = %s "
        "AND NOT c.keys ? x.key OFFSET 0) AS old)) "
        f"INSERT INTO {table} (workspace_id, customer_id, source, key, category, label, value, unit, score, computed_at) "
        "SELECT %s, customer_id, %s, key, category, label, value, unit, score, %s FROM new "
        "ON CONFLICT (customer_id, key) DO UPDATE SET source = excluded.source, category = excluded.category, "
        "label = excluded.label, value = excluded.value, unit = excluded.unit, score = excluded.score, "
        "computed_at = excluded.computed_at"
    )
    customers = [{"customer_id": customer_id, "keys": keys[customer_id]} for customer_id in sorted(live)]
    with connection.cursor() as cursor:
        cursor.execute(sql, [json.dumps(rows), json.dumps(customers), source, workspace_id, source, now])


# --- Freshness ---------------------------------------------------------------------------------


def request_rescore(workspace_id: str, customer_ids: Iterable[str]) -> None:
    """The ingestion hook: mark the customers dirty and debounce one drain task."""
    ids = set(customer_ids)
    if not ids:
        return
    dirty.mark_dirty(workspace_id, ids)
    if dirty.claim_schedule_slot():
        from health.tasks import rescore_dirty

        try:
            rescore_dirty.delay()
        except Exception as exc:  # broker down: the beat safety net drains the marks later
            logger.warning("health: could not enqueue rescore_dirty: %s", exc)


def rescore_customers(*, workspace_id: str, customer_ids: Iterable[str] | None = None) -> int:
    model = health_model_current(workspace_id=workspace_id)
    return rescore(workspace_id=workspace_id, model=model, customer_ids=customer_ids)


def rescore_dirty_drain(*, batch: int = 1000, max_seconds: float = 60.0) -> int:
    """Pop marks and rescore them in set-based batches until none are left (or time is up)."""
    deadline = timezone.now() + timedelta(seconds=max_seconds)
    total = 0
    while timezone.now() < deadline:
        taken = dirty.pop_dirty(batch)
        if not taken:
            break
        for workspace_id, ids in taken:
            try:
                total += rescore_customers(workspace_id=workspace_id, customer_ids=ids)
            except Exception:
                dirty.mark_dirty(workspace_id, ids)  # put them back for the next drain
                raise
    return total


# --- Rollup and history --------------------------------------------------------------------------


def _workspaces(slug: str | None) -> list[Workspace]:
    workspaces = Workspace.objects.all()
    if slug:
        workspaces = workspaces.filter(slug=slug)
    return list(workspaces)


def health_rollup(
    *, day: date | None = None, workspace_slug: str | None = None, now: datetime | None = None
) -> int:
    """Rescore every customer as of now and upsert the snapshot of `day` (default: today)."""
    now = now or timezone.now()
    day = day or now.date()
    total = 0
    for workspace in _workspaces(workspace_slug):
        model = health_model_current(workspace_id=workspace.id)
        total += rescore(workspace_id=workspace.id, model=model, as_of=now, snapshot_date=day)
    return total


def end_of_day(day: date) -> datetime:
    return datetime.combine(day + timedelta(days=1), time.min, tzinfo=UTC)


def health_backfill(*, start: date, end: date, workspace_slug: str | None = None) -> int:
    """Snapshot each day of [start, end] from the events as they stood at the end of that day
    (today: as of now, and the current score too). Re-running a day replaces its snapshot."""
    now = timezone.now()
    total = 0
    day = start
    while day <= end:
        if end_of_day(day) >= now:
            total += health_rollup(day=day, workspace_slug=workspace_slug, now=now)
        else:
            for workspace in _workspaces(workspace_slug):
                model = health_model_current(workspace_id=workspace.id)
                total += rescore(
                    workspace_id=workspace.id,
                    model=model,
                    as_of=end_of_day(day),
                    snapshot_date=day,
                    write_current=False,
                )
        day += timedelta(days=1)
    return total


# --- Purge -----------------------------------------------------------------------------------


def customer_health_purge(customer_id: str) -> None:
    """Registered with customers.hooks: a purged customer's signals and history go too."""
    while True:
        ids = list(
            HealthSnapshot.objects.filter(customer_id=customer_id).values_list("pk", flat=True)[:PURGE_BATCH]
        )
        if not ids:
            break
        HealthSnapshot.objects.filter(pk__in=ids).delete()
    ExternalSignal.objects.filter(customer_id=customer_id).delete()
    CustomerHealth.objects.filter(customer_id=customer_id).delete()
    DirtyCustomer.objects.filter(customer_id=customer_id).delete()
