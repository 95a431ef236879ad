"""Backtests, model fits and their application (issue 15; the contract is docs/health-backtests.md).

- Observations: for each observation date, the customers the cohorts count (health.cohorts:
  created by then, or with an event or signal at or before it; not churned at the end of the
  day) are scored as of the end of that day by the rescore's own set-based pass
  (write_current=False, no snapshot; a draft model is an unsaved HealthModel). Nothing is
  written. A customer with no signal then has no score and is left out. The label: a `churned`
  outcome in (end of the date, end of the date + horizon_days].
- Backtests measure a model's score on them (health.evaluation.backtest_result); fits propose a
  model from them (health.fitting.fit_model). Both run in a health task; the API and the admin
  call the functions here.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import numpy as np
import orjson
from django.db import IntegrityError, transaction
from django.utils import timezone

from health import churn_labels, evaluation, fitting, rescore_sql
from health import metrics as metric_definitions
from health.metrics import KEY_RE, model_specs, signal_keys
from health.models import ACTIVE_JOB_STATUSES, Backtest, HealthModel, JobStatus, Metric, ModelFit
from health.rescore_sql import rescore_set_based
from health.services import MAX_WEIGHT, _enqueue_workspace_rescore, end_of_day, health_model_current
from health.signals import CATALOG
from perly.errors import ApiError
from perly.models import Workspace
from perly.timestamps import iso

logger = logging.getLogger("perly.health")

MAX_DATES = 52
DEFAULT_HORIZON_DAYS = 30
MAX_HORIZON_DAYS = 365
MAX_DAYS_BACK = 730
MAX_EVERY_DAYS = 365
DEFAULT_EVERY_DAYS = 7
# Without dates: this many weekly dates, the last one horizon_days before today.
DEFAULT_DATES = 12
# A job still queued or running this long after it was created is reaped as failed (worker_lost).
STALE_AFTER = timedelta(minutes=30)

DATE_FIELDS = ("observation_dates", "from", "to", "every_days", "horizon_days")
BACKTEST_FIELDS = ("model", *DATE_FIELDS)
FIT_FIELDS = (*DATE_FIELDS, "signals")
DRAFT_FIELDS = ("weights", "thresholds", "metrics")
DRAFT_METRIC_FIELDS = ("higher_is_better", "curve", "points")


# --- Input -----------------------------------------------------------------------------------------


class _Errors:
    def __init__(self) -> None:
        self.items: list[dict] = []

    def add(self, param: str, message: str) -> None:
        self.items.append({"param": param, "code": "parameter_invalid", "message": message})

    def raise_if_any(self) -> None:
        if self.items:
            first = self.items[0]
            raise ApiError(
                400, "parameter_invalid", first["message"], param=first["param"], errors=self.items
            )


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _parse_date(value, param: str, errors: _Errors) -> date | None:
    if not isinstance(value, str) or len(value) != 10:
        errors.add(param, f"{param} must be a date, YYYY-MM-DD.")
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        errors.add(param, f"{param} must be a date, YYYY-MM-DD.")
        return None


def resolve_dates(params: dict, *, today: date) -> list[date]:
    """The observation dates of validated `params` (see parse_inputs), oldest first."""
    horizon = params["horizon_days"]
    if params.get("observation_dates") is not None:
        return sorted(date.fromisoformat(day) for day in params["observation_dates"])
    if params.get("from") is None:
        last = today - timedelta(days=horizon)
        return [last - timedelta(days=DEFAULT_EVERY_DAYS * n) for n in range(DEFAULT_DATES - 1, -1, -1)]
    start, end = date.fromisoformat(params["from"]), date.fromisoformat(params["to"])
    every = params.get("every_days") or DEFAULT_EVERY_DAYS
    days = []
    while start <= end:
        days.append(start)
        start += timedelta(days=every)
    return days


def parse_inputs(data, *, fields: tuple[str, ...], today: date) -> dict:
    """The job's inputs as given, validated (every bad field is a 400 naming it; nothing queued)."""
    errors = _Errors()
    if not isinstance(data, dict):
        raise ApiError(400, "parameter_invalid", "The request body must be a JSON object.", param="body")
    for name in data:
        if name not in fields:
            errors.add(name, f"Received unknown parameter: {name}.")
    errors.raise_if_any()
    params = {name: data.get(name) for name in fields}
    horizon = params["horizon_days"]
    if horizon is None:
        params["horizon_days"] = horizon = DEFAULT_HORIZON_DAYS
    elif not _is_int(horizon) or not 1 <= horizon <= MAX_HORIZON_DAYS:
        errors.add("horizon_days", f"horizon_days must be an integer from 1 to {MAX_HORIZON_DAYS}.")
        horizon = DEFAULT_HORIZON_DAYS
    ranged = [name for name in ("from", "to", "every_days") if params[name] is not None]
    days: list[date] = []
    if params["observation_dates"] is not None:
        if ranged:
            errors.add(ranged[0], "Send either observation_dates or from/to/every_days, not both.")
        listed = params["observation_dates"]
        if not isinstance(listed, list) or not 1 <= len(listed) <= MAX_DATES:
            errors.add("observation_dates", f"observation_dates must be a list of 1 to {MAX_DATES} dates.")
        else:
            for index, value in enumerate(listed):
                day = _parse_date(value, f"observation_dates[{index}]", errors)
                if day is not None:
                    days.append(day)
            if len(set(days)) != len(days):
                errors.add("observation_dates", "observation_dates must not repeat a date.")
    elif ranged:
        start = _parse_date(params["from"], "from", errors) if params["from"] is not None else None
        end = _parse_date(params["to"], "to", errors) if params["to"] is not None else None
        if params["from"] is None or params["to"] is None:
            errors.add("from" if params["from"] is None else "to", "from and to go together.")
        every = params["every_days"]
        if every is not None and (not _is_int(every) or not 1 <= every <= MAX_EVERY_DAYS):
            errors.add("every_days", f"every_days must be an integer from 1 to {MAX_EVERY_DAYS}.")
            every = None
        if start and end:
            if start > end:
                errors.add("from", "from must be on or before to.")
            else:
                count = (end - start).days // (every or DEFAULT_EVERY_DAYS) + 1
                if count > MAX_DATES:
                    errors.add("every_days", f"from/to/every_days give {count} dates; at most {MAX_DATES}.")
                days = [start, end]
    for day in days:
        if day < today - timedelta(days=MAX_DAYS_BACK):
            errors.add(
                "observation_dates" if not ranged else "from",
                f"Dates may be at most {MAX_DAYS_BACK} days back.",
            )
            break
    for day in days:
        if day > today - timedelta(days=horizon):
            errors.add(
                "observation_dates" if not ranged else "to",
                "Every date must be at least horizon_days in the past, so its horizon has passed.",
            )
            break
    errors.raise_if_any()
    return params


def draft_model(data, *, current: HealthModel) -> HealthModel:
    """An unsaved model version from a draft in the shape of PUT /v1/health/model (weights of
    keys not named keep the current weight), plus `metrics`: {key: {higher_is_better, curve,
    points}} changing the curves of the workspace's metrics. A 400 names each bad field."""
    errors = _Errors()
    if not isinstance(data, dict):
        raise ApiError(400, "parameter_invalid", "model must be an object.", param="model")
    for name in data:
        if name not in DRAFT_FIELDS:
            errors.add(f"model.{name}", f"Received unknown parameter: model.{name}.")
    weights = dict(current.weights)
    known = set(CATALOG) | {definition["key"] for definition in current.metrics}
    given = data.get("weights")
    if given is not None and not isinstance(given, dict):
        errors.add("model.weights", "model.weights must be an object of signal key -> number.")
    for key, weight in (given or {}).items() if isinstance(given, dict) else ():
        param = f"model.weights[{key}]"
        if key not in known:
            errors.add(param, f"Unknown signal key: '{key}'.")
        elif isinstance(weight, bool) or not isinstance(weight, (int, float)) or not math.isfinite(weight):
            errors.add(param, "Weights must be numbers.")
        elif not 0 <= weight <= MAX_WEIGHT:
            errors.add(param, f"Weights must be from 0 to {MAX_WEIGHT:,}.")
        else:
            weights[key] = float(weight)
    healthy, at_risk = current.healthy_threshold, current.at_risk_threshold
    thresholds = data.get("thresholds")
    if thresholds is not None:
        if not isinstance(thresholds, dict) or set(thresholds) - {"healthy", "at_risk"}:
            errors.add("model.thresholds", "model.thresholds must be an object with healthy and/or at_risk.")
        else:
            for name, value in thresholds.items():
                if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                    errors.add(f"model.thresholds.{name}", "Must be a number.")
            if not errors.items:
                healthy = float(thresholds.get("healthy", healthy))
                at_risk = float(thresholds.get("at_risk", at_risk))
                if not 0 <= at_risk < healthy <= 100:
                    errors.add("model.thresholds", "Thresholds must satisfy 0 <= at_risk < healthy <= 100.")
    definitions = {definition["key"]: definition for definition in current.metrics}
    curves = data.get("metrics")
    if curves is not None and not isinstance(curves, dict):
        errors.add("model.metrics", "model.metrics must be an object of metric key -> curve fields.")
    for key, change in (curves or {}).items() if isinstance(curves, dict) else ():
        param = f"model.metrics[{key}]"
        if key not in definitions:
            errors.add(param, f"No such metric: '{key}'.")
            continue
        if not isinstance(change, dict) or set(change) - set(DRAFT_METRIC_FIELDS):
            errors.add(param, f"A draft may change only {', '.join(DRAFT_METRIC_FIELDS)} of a metric.")
            continue
        others = {other: d for other, d in definitions.items() if other != key}
        try:
            definitions[key] = metric_definitions.validate(change, others=others, current=definitions[key])
        except metric_definitions.MetricError as exc:
            for field, message in exc.errors:
                errors.add(f"{param}.{field}", message)
    if sum(weights.values()) <= 0:
        errors.add("model.weights", "At least one weight must be above zero.")
    errors.raise_if_any()
    return HealthModel(
        workspace_id=current.workspace_id,
        version=current.version,
        weights=weights,
        metrics=[definitions[key] for key in sorted(definitions)],
        healthy_threshold=healthy,
        at_risk_threshold=at_risk,
        created_by="draft",
    )


def _fit_signals(value, *, current: HealthModel) -> None:
    if value is None:
        return
    known = set(signal_keys(current.metrics)) | set(CATALOG)
    errors = _Errors()
    if not isinstance(value, list) or not 1 <= len(value) <= len(known):
        errors.add("signals", "signals must be a list of the workspace's signal keys.")
    else:
        for index, key in enumerate(value):
            if not isinstance(key, str) or key not in known:
                errors.add(f"signals[{index}]", f"Not a signal of this workspace: {key!r}.")
        if len(set(map(str, value))) != len(value):
            errors.add("signals", "signals must not repeat a key.")
    errors.raise_if_any()


# --- Observations -----------------------------------------------------------------------------------


@dataclass
class ObservationSet:
    """One row per (customer, observation date) with a score."""

    customer_ids: np.ndarray
    scores: np.ndarray  # the model's score
    churned: np.ndarray  # bool: churned within the horizon
    signal_scores: dict[str, np.ndarray]  # key -> 0-100 score, NaN where absent
    signal_values: dict[str, np.ndarray]  # key -> value, NaN where absent or null
    directions: dict[str, bool]  # key -> the model's higher_is_better for the signal

    def __len__(self) -> int:
        return len(self.scores)


_OBSERVED_SQL = f"""
SELECT s.customer_id, s.score, s.signal_values, s.signal_scores, s.signals::text,
       {churn_labels.churned_within_horizon("s.customer_id")} AS churned
FROM "{rescore_sql.SCORED}" s
WHERE s.score IS NOT NULL AND {churn_labels.live_at_end("s.customer_id")}
"""  # noqa: S608 (table names only; values are parameters)


def observations(
    *, workspace_id: str, model: HealthModel, dates: list[date], horizon_days: int
) -> ObservationSet:
    """Score the workspace as of the end of each date with `model` (saved or draft); writes nothing."""
    specs = model_specs(model.metrics)
    event_keys = [spec.key for spec in specs]
    directions = {spec.key: spec.higher_is_better for spec in specs}
    sql = _OBSERVED_SQL
    rows: list[tuple] = []
    for day in dates:
        end = end_of_day(day)
        params = churn_labels.label_params(end, horizon_days)

        def read(cursor, params=params):
            cursor.execute(sql, params)
            return cursor.fetchall()

        rows.extend(
            rescore_set_based(
                workspace_id=workspace_id,
                model=model,
                ids=None,
                as_of=end,
                snapshot_date=None,
                write_current=False,
                read_scored=read,
            )
        )
    n = len(rows)
    signal_scores: dict[str, np.ndarray] = {key: np.full(n, np.nan) for key in event_keys}
    signal_values: dict[str, np.ndarray] = {key: np.full(n, np.nan) for key in event_keys}
    for index, (_cid, _score, values, scores, others, _churned) in enumerate(rows):
        for position, key in enumerate(event_keys):
            if scores and scores[position] is not None:
                signal_scores[key][index] = scores[position]
            if values and values[position] is not None:
                signal_values[key][index] = values[position]
        for signal in orjson.loads(others) if others else ():
            key = signal["key"]
            if key not in signal_scores:
                signal_scores[key] = np.full(n, np.nan)
                signal_values[key] = np.full(n, np.nan)
                directions.setdefault(key, True)
            signal_scores[key][index] = float(signal["score"])
            if signal.get("value") is not None:
                signal_values[key][index] = float(signal["value"])
    return ObservationSet(
        customer_ids=np.array([row[0] for row in rows], dtype=object),
        scores=np.array([row[1] for row in rows], dtype=float),
        churned=np.array([row[5] for row in rows], dtype=bool),
        signal_scores=signal_scores,
        signal_values=signal_values,
        directions=directions,
    )


# --- Backtests --------------------------------------------------------------------------------------


def _in_progress(kind: str, job) -> ApiError:
    name = f": '{job.pk}'" if job else ""
    return ApiError(
        409, f"{kind}_in_progress", f"A {kind} of this workspace is already queued or running{name}."
    )


def _enqueue(task_name: str, job_id: str) -> None:
    from health import tasks

    task = getattr(tasks, task_name)

    def send() -> None:
        try:
            task.apply_async((job_id,), retry=False)
        except Exception as exc:  # broker down: the job stays queued and the reaper fails it
            logger.warning("health: could not queue %s %s: %s", task_name, job_id, exc)

    transaction.on_commit(send)


def backtest_create(*, workspace_id: str, data, today: date | None = None) -> Backtest:
    """Validate and queue a backtest (409 backtest_in_progress while one is queued or running)."""
    today = today or timezone.now().date()
    params = parse_inputs(data, fields=BACKTEST_FIELDS, today=today)
    if params["model"] is not None:
        draft_model(params["model"], current=health_model_current(workspace_id=workspace_id))
    return _queue_job(Backtest, "run_backtest", "backtest", workspace_id=workspace_id, params=params)


def _queue_job(model_class, task_name: str, resource: str, *, workspace_id: str, params: dict):
    """Create the job and queue its task after the commit; the partial unique index on active jobs
    turns a second one into 409 `<resource>_in_progress`, naming the one that runs."""
    try:
        with transaction.atomic():
            job = model_class.objects.create(workspace_id=workspace_id, params=params)
            _enqueue(task_name, job.pk)
    except IntegrityError:
        active = model_class.objects.filter(workspace_id=workspace_id, status__in=ACTIVE_JOB_STATUSES).first()
        raise _in_progress(resource, active) from None
    return job


def _claim(model_class, job_id: str):
    """queued -> running, once: a redelivered task finds it claimed and does nothing."""
    now = timezone.now()
    claimed = model_class.objects.filter(pk=job_id, status=JobStatus.QUEUED).update(
        status=JobStatus.RUNNING, started_at=now
    )
    return model_class.objects.get(pk=job_id) if claimed else None


def _finish(job, *, result: dict | None = None, error: dict | None = None) -> None:
    job.status = JobStatus.FAILED if error else JobStatus.SUCCEEDED
    job.result, job.error, job.finished_at = result, error, timezone.now()
    # Only a running job is finished: a reaped one stays failed.
    type(job).objects.filter(pk=job.pk, status=JobStatus.RUNNING).update(
        status=job.status, result=result, error=error, finished_at=job.finished_at
    )


def _run(model_class, job_id: str, compute) -> str:
    job = _claim(model_class, job_id)
    if job is None:
        return f"{job_id}: not queued"
    try:
        result = compute(job)
    except (evaluation.ChurnDataError, ApiError) as exc:
        # ApiError: the inputs no longer fit the workspace (a draft's metric deleted since the start).
        _finish(job, error={"code": exc.code, "message": exc.message})
    except Exception:
        logger.exception("health: %s failed", job_id)
        _finish(job, error={"code": "internal_error", "message": "The job failed unexpectedly; try again."})
        raise
    else:
        _finish(job, result=result)
    return f"{job_id}: {job.status}"


def _signal_series(data: ObservationSet) -> dict[str, np.ndarray]:
    """Each signal's values for the per-signal AUC; a signal without values uses its scores."""
    out = {}
    for key, values in data.signal_values.items():
        if np.isnan(data.signal_scores[key]).all():
            continue
        out[key] = values if not np.isnan(values).all() else data.signal_scores[key]
    return out


def backtest_compute(*, workspace_id: str, params: dict, today: date) -> dict:
    current = health_model_current(workspace_id=workspace_id)
    model = current if params.get("model") is None else draft_model(params["model"], current=current)
    data = observations(
        workspace_id=workspace_id,
        model=model,
        dates=resolve_dates(params, today=today),
        horizon_days=params["horizon_days"],
    )
    return evaluation.backtest_result(
        data.scores,
        data.churned,
        healthy=model.healthy_threshold,
        at_risk=model.at_risk_threshold,
        signals=_signal_series(data),
    )


def backtest_run(*, backtest_id: str) -> str:
    def compute(job: Backtest) -> dict:
        return backtest_compute(workspace_id=job.workspace_id, params=job.params, today=job.created_at.date())

    return _run(Backtest, backtest_id, compute)


# --- Fits -------------------------------------------------------------------------------------------


def fit_create(*, workspace_id: str, data, today: date | None = None) -> ModelFit:
    today = today or timezone.now().date()
    params = parse_inputs(data, fields=FIT_FIELDS, today=today)
    _fit_signals(params["signals"], current=health_model_current(workspace_id=workspace_id))
    return _queue_job(ModelFit, "run_model_fit", "model_fit", workspace_id=workspace_id, params=params)


def _reversible(key: str) -> bool:
    """A workspace metric's direction can be reversed in a model version; the built-ins' fixed
    curves and the integrations' own scores cannot."""
    return bool(KEY_RE.match(key))


def fit_compute(*, workspace_id: str, params: dict, today: date) -> dict:
    current = health_model_current(workspace_id=workspace_id)
    data = observations(
        workspace_id=workspace_id,
        model=current,
        dates=resolve_dates(params, today=today),
        horizon_days=params["horizon_days"],
    )
    if params.get("signals"):
        keys = list(params["signals"])
        for key in keys:
            data.signal_scores.setdefault(key, np.full(len(data), np.nan))
    else:
        keys = sorted(key for key, scores in data.signal_scores.items() if not np.isnan(scores).all())
    if not keys:
        raise evaluation.ChurnDataError("no_signal_data", "No signal has a value in any observation.")
    dropped: list[str] = []
    while True:
        matrix = (
            np.column_stack([data.signal_scores[key] for key in keys])
            if len(data)
            else np.zeros((0, len(keys)))
        )
        rows = fitting.Observations(tuple(keys), matrix, data.churned, data.customer_ids)
        fit = fitting.fit_model(
            rows,
            current_weights=current.weights,
            current_higher_is_better={key: data.directions.get(key, True) for key in keys},
        )
        fixed = [key for key in fit.flipped if not _reversible(key)]
        if not fixed:
            break
        # A "higher is worse" built-in or integration signal cannot be reversed: fit without it,
        # so the proposal is exactly the score the applied version computes.
        dropped.extend(fixed)
        keys = [key for key in keys if key not in fixed]
        if not keys:
            raise evaluation.ChurnDataError(
                "no_separation", "Only signals whose direction cannot be reversed separate churners."
            )
    scored = ~np.isnan(matrix).all(axis=1)
    current_auc = evaluation.auc(data.scores[scored], data.churned[scored])
    return {
        "observations": fit.observations,
        "churned": fit.churned,
        "fitted_signals": list(keys),
        "proposed_model": {
            "weights": fit.weights,
            "higher_is_better": fit.higher_is_better,
            "thresholds": fit.thresholds,
        },
        "flipped": list(fit.flipped),
        "dropped": sorted(dropped),
        "coverage": {key: round(value, 4) for key, value in fit.coverage.items()},
        "cv_auc": None if fit.cv_auc is None else round(fit.cv_auc, 4),
        "current_model_auc": None if current_auc is None else round(current_auc, 4),
        "churn_curve": {
            "intercept": fit.curve.intercept,
            "slope": fit.curve.slope,
            "horizon_days": params["horizon_days"],
        },
    }


def fit_run(*, fit_id: str) -> str:
    def compute(job: ModelFit) -> dict:
        return fit_compute(workspace_id=job.workspace_id, params=job.params, today=job.created_at.date())

    return _run(ModelFit, fit_id, compute)


def _flipped_definition(definition: dict) -> dict:
    flipped = {**definition, "higher_is_better": not definition.get("higher_is_better", True)}
    if definition.get("curve") == "points":
        # A points curve says its direction itself: mirror the scores.
        flipped["points"] = [{"value": p["value"], "score": 100.0 - p["score"]} for p in definition["points"]]
    return flipped


def fit_apply(*, workspace_id: str, fit_id: str) -> HealthModel:
    """Make a succeeded fit's proposal the next model version (created_by "fit:<id>"): the fitted
    signals get the proposed weights, every other signal 0, flipped metrics their direction
    reversed (in their definitions too), the proposed thresholds; then rescore in a task. Applying
    it again returns that version while it is current, and is 409 fit_already_applied after."""
    with transaction.atomic():
        Workspace.objects.select_for_update().filter(pk=workspace_id).first()
        fit = ModelFit.objects.select_for_update().filter(workspace_id=workspace_id, pk=fit_id).first()
        if fit is None:
            raise ApiError(404, "resource_missing", f"No such model_fit: '{fit_id}'.", param="id")
        if fit.status != JobStatus.SUCCEEDED:
            raise ApiError(
                409,
                "fit_not_succeeded",
                f"Model fit '{fit_id}' is {fit.status}; only a succeeded fit can be applied.",
            )
        current = health_model_current(workspace_id=workspace_id)
        if fit.applied_version is not None:
            # A retried apply answers with the version it made; applying it on top of a later
            # model would flip its flipped metrics back.
            if current.version == fit.applied_version:
                return current
            raise ApiError(
                409,
                "fit_already_applied",
                f"Model fit '{fit_id}' made version {fit.applied_version}, and the model has changed since; "
                "fit again to propose from the current model.",
            )
        proposal = fit.result["proposed_model"]
        known = set(CATALOG) | {definition["key"] for definition in current.metrics}
        missing = [key for key in proposal["weights"] if key not in known]
        if missing:
            raise ApiError(
                409, "fit_outdated", f"Signal {missing[0]!r} of this fit is no longer defined; fit again."
            )
        weights = dict.fromkeys(current.weights, 0.0)
        weights.update({key: float(weight) for key, weight in proposal["weights"].items()})
        flipped = set(fit.result["flipped"])
        definitions = [
            _flipped_definition(definition) if definition["key"] in flipped else definition
            for definition in current.metrics
        ]
        for row in Metric.objects.filter(workspace_id=workspace_id, key__in=flipped):
            row.definition = _flipped_definition(row.definition)
            row.updated_at = timezone.now()
            row.save(update_fields=["definition", "updated_at"])
        model = HealthModel.objects.create(
            workspace_id=workspace_id,
            version=current.version + 1,
            weights=weights,
            metrics=definitions,
            healthy_threshold=float(proposal["thresholds"]["healthy"]),
            at_risk_threshold=float(proposal["thresholds"]["at_risk"]),
            created_by=f"fit:{fit.pk}",
        )
        fit.applied_at = timezone.now()
        fit.applied_version = model.version
        fit.save(update_fields=["applied_at", "applied_version"])
        transaction.on_commit(lambda: _enqueue_workspace_rescore(workspace_id))
    return model


# --- Reaper -----------------------------------------------------------------------------------------


def health_jobs_reap_stale(*, now: datetime | None = None) -> int:
    """Fail the backtests and fits still queued or running STALE_AFTER after they were created
    (their worker died, or the broker lost the task): `worker_lost`, and the workspace may start
    another."""
    now = now or timezone.now()
    error = {"code": "worker_lost", "message": "The worker running this job stopped; start it again."}
    total = 0
    for model_class in (Backtest, ModelFit):
        total += model_class.objects.filter(
            status__in=ACTIVE_JOB_STATUSES, created_at__lt=now - STALE_AFTER
        ).update(status=JobStatus.FAILED, error=error, finished_at=now)
    return total


# --- Representations ----------------------------------------------------------------------------------


BACKTEST_RESULT_FIELDS = (
    "observations",
    "churned",
    "auc",
    "churn_rate_by_status",
    "lift_bottom_decile",
    "calibration",
    "signals",
)
FIT_RESULT_FIELDS = (
    "observations",
    "churned",
    "fitted_signals",
    "proposed_model",
    "flipped",
    "dropped",
    "coverage",
    "cv_auc",
    "current_model_auc",
    "churn_curve",
)


def _job(job, object_name: str, inputs: tuple[str, ...], results: tuple[str, ...]) -> dict:
    result = job.result if job.status == JobStatus.SUCCEEDED and job.result else {}
    return {
        "object": object_name,
        "id": job.pk,
        "status": job.status,
        "error": job.error,
        "created_at": iso(job.created_at),
        "started_at": iso(job.started_at),
        "finished_at": iso(job.finished_at),
        **{name: job.params.get(name) for name in inputs},
        **{name: result.get(name) for name in results},
    }


def backtest_representation(job: Backtest) -> dict:
    return _job(job, "backtest", BACKTEST_FIELDS, BACKTEST_RESULT_FIELDS)


def fit_representation(job: ModelFit) -> dict:
    return {
        **_job(job, "model_fit", FIT_FIELDS, FIT_RESULT_FIELDS),
        "applied_at": iso(job.applied_at),
        "applied_version": job.applied_version,
    }
