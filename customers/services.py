"""Every customer write. The API, the admin and the integrations' sync call these."""

from __future__ import annotations

import logging

from django.db import IntegrityError, transaction
from django.utils import timezone

from customers.api.serializers import customer_representation
from customers.external_ids import normalize_external_id
from customers.hooks import run_customer_purgers
from customers.models import Customer
from perly import response_cache
from perly.api import merge_metadata
from perly.errors import ApiError, not_found_message
from webhooks.services import webhook_event_publish, webhook_events_publish_many

logger = logging.getLogger("perly.customers")

WRITABLE_FIELDS = ("name", "email", "domain", "external_id", "plan", "owner", "lifecycle_stage", "metadata")


def _writable(data: dict) -> dict:
    """The writable fields given, the external id normalized (customers.external_ids): every
    writer (API, admin, integrations) stores the same text for the same id."""
    fields = {name: data[name] for name in WRITABLE_FIELDS if name in data}
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


def customer_create(*, workspace_id: str, data: dict) -> Customer:
    fields = _writable(data)
    fields["metadata"] = merge_metadata({}, fields.get("metadata") or {})
    now = timezone.now()
    customer = Customer(workspace_id=workspace_id, created_at=now, updated_at=now, **fields)
    try:
        with transaction.atomic():
            customer.save(force_insert=True)
            webhook_event_publish(
                workspace_id=workspace_id,
                event_type="customer.created",
                data_object=customer_representation(customer),
            )
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


def customer_update(*, workspace_id: str, customer_id: str, data: dict) -> Customer:
    """Apply a PATCH under a row lock, so concurrent metadata merges lose no key."""
    data = {**data, **_writable(data)}
    try:
        with transaction.atomic():
            customer = _locked_customer(workspace_id, customer_id)
            before = customer_representation(customer)
            for name in WRITABLE_FIELDS:
                if name not in data:
                    continue
                value = data[name]
                if name == "metadata":
                    value = merge_metadata(customer.metadata, value or {})
                setattr(customer, name, value)
            customer.updated_at = timezone.now()
            customer.save()
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
