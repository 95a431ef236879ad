"""Every customer write. The API, the admin and the integrations' sync call these."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from django.db import IntegrityError, transaction
from django.utils import timezone

from customers.api.serializers import customer_representation
from customers.external_ids import normalize_external_id
from customers.hooks import notify_churn_changed, notify_customer_deleted, run_customer_purgers
from customers.models import Customer, LifecycleStage, Outcome, OutcomeKind, OutcomeSource
from perly import response_cache
from perly.api import merge_metadata
from perly.errors import ApiError, invalid_parameter, not_found_message
from perly.timestamps import iso
from webhooks.services import webhook_event_publish, webhook_events_publish_many

logger = logging.getLogger("perly.customers")

WRITABLE_FIELDS = (
    "name",
    "email",
    "domain",
    "external_id",
    "plan",
    "owner",
    "lifecycle_stage",
    "churned_at",
    "metadata",
)
# Set by plain assignment; churned_at and moves into or out of `churned` follow the outcome rules.
_PLAIN_FIELDS = tuple(name for name in WRITABLE_FIELDS if name not in ("lifecycle_stage", "churned_at"))
# Anything older is a typo (a year 0202), not history anyone imports.
EARLIEST_OUTCOME = datetime(1970, 1, 1, tzinfo=UTC)


def _writable(data: dict, names: tuple[str, ...] = WRITABLE_FIELDS) -> dict:
    """The writable fields given, the external id normalized (customers.external_ids): every
    writer (API, admin, integrations) stores the same text for the same id."""
    fields = {name: data[name] for name in names if name in data}
    if "external_id" in fields:
        fields["external_id"] = normalize_external_id(fields["external_id"])
    return fields


def _external_id_conflict(workspace_id: str, external_id: str) -> ApiError:
    existing = (
        Customer.objects.filter(workspace_id=workspace_id, external_id=external_id)
        .values_list("id", flat=True)
        .first()
    )
    return ApiError(
        409,
        "resource_already_exists",
        f"A customer with external_id '{external_id}' already exists: '{existing}'.",
        param="external_id",
    )


def _locked_customer(workspace_id: str, customer_id: str) -> Customer:
    """The live customer, row-locked. A concurrent delete can commit after the view's lookup and
    before this lock is granted (PostgreSQL then re-checks `deleted_at IS NULL` and returns no
    row): that is the 404 the request would have got a moment later, not a 500."""
    customer = Customer.objects.select_for_update().filter(workspace_id=workspace_id, pk=customer_id).first()
    if customer is None:
        raise ApiError(404, "resource_missing", not_found_message("customer", customer_id))
    return customer


# --- Outcomes: churn and win-back -------------------------------------------------------------


@dataclass(frozen=True)
class _Transition:
    kind: str  # an OutcomeKind, or "corrected": the current churn's date moves
    at: datetime
    stage: str | None  # lifecycle_stage afterwards


def _invalid_churn(message: str, param: str = "churned_at") -> ApiError:
    return invalid_parameter(param, message)


def _churn_transition(current: datetime | None, data: dict, now: datetime) -> _Transition | None:
    """What a write does to the churn state. `churned_at` set means churned; the stage
    `churned` without a date stamps `now`; leaving `churned` (or clearing churned_at) is a
    win-back, recorded now. None when the churn state does not change."""
    stage_given = "lifecycle_stage" in data
    stage = data.get("lifecycle_stage")
    if "churned_at" in data:
        churned_at = data["churned_at"]
        if churned_at is not None and stage_given and stage != LifecycleStage.CHURNED:
            raise _invalid_churn(
                "churned_at is set but lifecycle_stage is not 'churned'; send one of them, or both consistently."
            )
        if churned_at is None and stage_given and stage == LifecycleStage.CHURNED:
            raise _invalid_churn(
                "lifecycle_stage 'churned' needs a churned_at; omit churned_at to stamp now."
            )
    elif stage_given:
        churned_at = (current or now) if stage == LifecycleStage.CHURNED else None
    else:
        return None
    if churned_at is None:
        if current is None:
            return None
        return _Transition(OutcomeKind.REACTIVATED, now, stage if stage_given else LifecycleStage.ACTIVE)
    _check_outcome_time(churned_at, now)
    if current is None:
        return _Transition(OutcomeKind.CHURNED, churned_at, LifecycleStage.CHURNED)
    if churned_at != current:
        return _Transition("corrected", churned_at, LifecycleStage.CHURNED)
    return None


def _check_outcome_time(at: datetime, now: datetime) -> None:
    if at > now:
        raise _invalid_churn(f"churned_at must not be in the future (it is {iso(at)}, now is {iso(now)}).")
    if at < EARLIEST_OUTCOME:
        raise _invalid_churn("churned_at must be on or after 1970-01-01T00:00:00Z.")


def _apply_transition(customer: Customer, change: _Transition, source: str) -> Outcome:
    """Record the outcome and set churned_at / lifecycle_stage (the caller saves the customer).
    History stays in order: an outcome never predates the one before it."""
    latest = list(Outcome.objects.filter(customer_id=customer.pk).order_by("-at", "-id")[:2])
    if change.kind == "corrected" and latest and latest[0].kind == OutcomeKind.CHURNED:
        before = latest[1] if len(latest) > 1 else None
        outcome = latest[0]
    else:
        before = latest[0] if latest else None
        outcome = None
    if before is not None and change.at < before.at:
        raise _invalid_churn(
            f"churned_at ({iso(change.at)}) is before the customer's last recorded outcome "
            f"({before.kind} at {iso(before.at)}); outcomes are kept in order."
        )
    if outcome is not None:
        outcome.at = change.at
        outcome.save(update_fields=["at"])
    else:
        kind = OutcomeKind.CHURNED if change.kind == "corrected" else change.kind
        outcome = Outcome.objects.create(
            workspace_id=customer.workspace_id, customer=customer, kind=kind, at=change.at, source=source
        )
    customer.churned_at = None if change.kind == OutcomeKind.REACTIVATED else change.at
    customer.lifecycle_stage = change.stage
    _churn_changed_after_commit(customer)
    return outcome


def _churn_changed_after_commit(customer: Customer) -> None:
    workspace_id, customer_id = customer.workspace_id, customer.pk
    transaction.on_commit(lambda: notify_churn_changed(workspace_id, customer_id))


def _publish_churned(customer: Customer) -> None:
    webhook_event_publish(
        workspace_id=customer.workspace_id,
        event_type="customer.churned",
        data_object=customer_representation(customer),
    )


def customer_outcome_record(
    *, workspace_id: str, customer_id: str, kind: str, at: datetime, source: str
) -> Outcome | None:
    """A churn or a win-back seen elsewhere (Stripe): the same rules and webhooks as a PATCH,
    at the given time. None when the customer is already in that state."""
    now = timezone.now()
    at = min(at, now)  # the provider's clock may run ahead of ours
    try:
        return _outcome_record(workspace_id, customer_id, kind, at, source, now)
    except ApiError as exc:
        if exc.status == 404:
            raise
        # Older than the customer's last recorded outcome (say, a win-back entered by hand since):
        # stale news, and the history stays in order.
        logger.info("outcome %s at %s for %s not recorded: %s", kind, at, customer_id, exc.message)
        return None


def _outcome_record(
    workspace_id: str, customer_id: str, kind: str, at: datetime, source: str, now: datetime
) -> Outcome | None:
    with transaction.atomic():
        customer = _locked_customer(workspace_id, customer_id)
        before = customer_representation(customer)
        if kind == OutcomeKind.CHURNED:
            change = _churn_transition(customer.churned_at, {"churned_at": at}, now)
            if change is not None and change.kind == "corrected":
                return None  # an open churn keeps its first date
        elif customer.churned_at is None:
            return None
        else:
            change = _Transition(
                OutcomeKind.REACTIVATED, min(max(at, customer.churned_at), now), LifecycleStage.ACTIVE
            )
        if change is None:
            return None
        outcome = _apply_transition(customer, change, source)
        _save_with_webhooks(customer, before, change)
    return outcome


def _save_with_webhooks(customer: Customer, before: dict, change: _Transition | None) -> None:
    customer.updated_at = timezone.now()
    customer.save()
    workspace_id = customer.workspace_id
    transaction.on_commit(lambda: response_cache.invalidate_workspace(workspace_id))
    after = customer_representation(customer)
    previous = {key: before[key] for key in WRITABLE_FIELDS if before[key] != after[key]}
    if previous:
        webhook_event_publish(
            workspace_id=workspace_id,
            event_type="customer.updated",
            data_object=after,
            previous_attributes=previous,
        )
    if change is not None and change.kind == OutcomeKind.CHURNED:
        _publish_churned(customer)


# --- Customers ---------------------------------------------------------------------------------


def customer_create(*, workspace_id: str, data: dict, source: str = OutcomeSource.API) -> Customer:
    """A new customer. Created churned (an import of past customers), it also gets its churned
    outcome and a `customer.churned` webhook after `customer.created`."""
    fields = _writable(data, _PLAIN_FIELDS)
    fields["metadata"] = merge_metadata({}, fields.get("metadata") or {})
    now = timezone.now()
    change = _churn_transition(None, data, now)
    customer = Customer(
        workspace_id=workspace_id,
        created_at=now,
        updated_at=now,
        lifecycle_stage=data.get("lifecycle_stage") if change is None else change.stage,
        churned_at=None if change is None else change.at,
        **fields,
    )
    try:
        with transaction.atomic():
            customer.save(force_insert=True)
            if change is not None:  # a new customer has no history to keep in order
                Outcome.objects.create(
                    workspace_id=workspace_id,
                    customer=customer,
                    kind=change.kind,
                    at=change.at,
                    source=source,
                )
                _churn_changed_after_commit(customer)
            webhook_event_publish(
                workspace_id=workspace_id,
                event_type="customer.created",
                data_object=customer_representation(customer),
            )
            if change is not None:
                _publish_churned(customer)
    except IntegrityError:
        if customer.external_id:
            raise _external_id_conflict(workspace_id, customer.external_id) from None
        raise
    return customer


def _first_repeat(values: list[str]) -> str | None:
    seen: set[str] = set()
    for value in values:
        if value in seen:
            return value
        seen.add(value)
    return None


def customers_create_bulk(*, workspace_id: str, rows: list[dict]) -> list[Customer]:
    """`customer_create` for many customers at once (a sync creating a page of them): the same
    rows and the same `customer.created` webhooks, in one transaction with a constant number of
    queries. All or nothing: an external_id already taken (or repeated in `rows`) is a 409."""
    now = timezone.now()
    customers = []
    for data in rows:
        if data.get("churned_at") or data.get("lifecycle_stage") == LifecycleStage.CHURNED:
            # No outcome would be recorded: a churned customer is created with customer_create.
            raise ValueError("customers_create_bulk cannot create churned customers.")
        fields = _writable(data)
        fields["metadata"] = merge_metadata({}, fields.get("metadata") or {})
        customers.append(Customer(workspace_id=workspace_id, created_at=now, updated_at=now, **fields))
    if not customers:
        return []
    external_ids = [c.external_id for c in customers if c.external_id]
    repeated = _first_repeat(external_ids)
    if repeated is not None:
        raise ApiError(
            409,
            "resource_already_exists",
            f"external_id '{repeated}' appears more than once in the batch.",
            param="external_id",
        )
    try:
        with transaction.atomic():
            Customer.objects.bulk_create(customers, batch_size=1000)
            webhook_events_publish_many(
                workspace_id=workspace_id,
                event_type="customer.created",
                data_objects=[customer_representation(c) for c in customers],
            )
    except IntegrityError:
        taken = (
            Customer.objects.filter(workspace_id=workspace_id, external_id__in=external_ids)
            .values_list("external_id", flat=True)
            .first()
        )
        if taken:
            raise _external_id_conflict(workspace_id, taken) from None
        raise
    return customers


def customer_update(
    *, workspace_id: str, customer_id: str, data: dict, source: str = OutcomeSource.API
) -> Customer:
    """Apply a PATCH under a row lock, so concurrent metadata merges lose no key. A churn or a
    win-back is recorded as an outcome (from `source`) in the same transaction."""
    data = {**data, **_writable(data)}
    try:
        with transaction.atomic():
            customer = _locked_customer(workspace_id, customer_id)
            before = customer_representation(customer)
            for name in _PLAIN_FIELDS:
                if name not in data:
                    continue
                value = data[name]
                if name == "metadata":
                    value = merge_metadata(customer.metadata, value or {})
                setattr(customer, name, value)
            change = _churn_transition(customer.churned_at, data, timezone.now())
            if change is not None:
                _apply_transition(customer, change, source)
            elif "lifecycle_stage" in data:
                customer.lifecycle_stage = data["lifecycle_stage"]
            _save_with_webhooks(customer, before, change)
    except IntegrityError:
        if data.get("external_id"):
            raise _external_id_conflict(workspace_id, data["external_id"]) from None
        raise
    return customer


def customer_delete(*, workspace_id: str, customer_id: str) -> None:
    """Hide the customer at once and purge its data after commit (a task: events can be many)."""
    with transaction.atomic():
        customer = _locked_customer(workspace_id, customer_id)
        representation = customer_representation(customer)
        customer.deleted_at = timezone.now()
        customer.external_id = None  # frees the external_id for reuse at once
        customer.save(update_fields=["deleted_at", "external_id"])
        transaction.on_commit(lambda: response_cache.invalidate_workspace(workspace_id))
        transaction.on_commit(lambda: notify_customer_deleted(workspace_id, customer_id))
        webhook_event_publish(
            workspace_id=workspace_id,
            event_type="customer.deleted",
            data_object={**representation, "deleted": True},
        )
        transaction.on_commit(lambda: _enqueue_purge(customer_id))


def _enqueue_purge(customer_id: str) -> None:
    from customers.tasks import purge_customer

    try:
        # retry=False: fail fast when the broker is down; purge_pending_customers is the retry.
        purge_customer.apply_async((customer_id,), retry=False)
    except Exception as exc:  # kombu/redis raise a variety of connection errors
        logger.warning("could not queue the purge of %s (%s); the periodic purge will", customer_id, exc)


def customer_purge(*, customer_id: str) -> bool:
    """Remove a deleted customer's data, then the customer. Safe to run twice."""
    customer = Customer.all_objects.filter(pk=customer_id, deleted_at__isnull=False).first()
    if customer is None:
        return False
    run_customer_purgers(customer_id)
    Customer.all_objects.filter(pk=customer_id).delete()
    return True


def purge_pending_customers(*, limit: int = 100) -> int:
    """Catch up on purges whose task was lost (broker down at delete time)."""
    ids = list(Customer.all_objects.filter(deleted_at__isnull=False).values_list("id", flat=True)[:limit])
    return sum(customer_purge(customer_id=customer_id) for customer_id in ids)
