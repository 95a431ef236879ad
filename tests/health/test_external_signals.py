from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from customers.models import Customer
from health.models import CustomerHealth, ExternalSignal
from health.services import external_signals_upsert, external_signals_upsert_many
from health.signals import CATALOG


def _billing(score: float = 80.0, **extra) -> dict:
    return {
        "key": "billing.mrr",
        "category": "billing",
        "label": "MRR",
        "value": 1200.0,
        "unit": "usd",
        "score": score,
        **extra,
    }


def test_upsert_scores_customer_from_external_signals_alone(
    make_customer, django_capture_on_commit_callbacks
):
    customer = make_customer()
    with django_capture_on_commit_callbacks(execute=True):
        written = external_signals_upsert(
            workspace_id=customer.workspace_id,
            customer_id=customer.id,
            source="stripe",
            signals=[
                _billing(80.0),
                {
                    "key": "billing.failed_payments_90d",
                    "category": "billing",
                    "label": "Failed payments",
                    "value": 0,
                    "unit": "payments",
                    "score": 100.0,
                },
            ],
        )
    assert written == 2
    customer = Customer.objects.get(pk=customer.pk)
    assert customer.health_score == 90.0
    assert customer.health_status == "healthy"


def test_upsert_replaces_the_sources_signals(make_customer, django_capture_on_commit_callbacks):
    customer = make_customer()
    ws = customer.workspace_id
    with django_capture_on_commit_callbacks(execute=True):
        external_signals_upsert(
            workspace_id=ws,
            customer_id=customer.id,
            source="stripe",
            signals=[
                _billing(),
                {
                    "key": "billing.overdue_amount",
                    "category": "billing",
                    "label": "Overdue",
                    "value": 10.0,
                    "unit": "usd",
                    "score": 20.0,
                },
            ],
        )
        external_signals_upsert(
            workspace_id=ws,
            customer_id=customer.id,
            source="zendesk",
            signals=[
                {
                    "key": "support.open_cases",
                    "category": "support",
                    "label": "Open cases",
                    "value": 2.0,
                    "unit": "cases",
                    "score": 60.0,
                }
            ],
        )
        external_signals_upsert(
            workspace_id=ws, customer_id=customer.id, source="stripe", signals=[_billing(50.0)]
        )
    rows = sorted(ExternalSignal.objects.values_list("source", "key", "score"))
    assert rows == [("stripe", "billing.mrr", 50.0), ("zendesk", "support.open_cases", 60.0)]


@pytest.mark.parametrize(
    "signal",
    [
        {"key": "billing.unknown", "score": 10},
        {"key": "usage.active_days_30d", "score": 10},
        {"key": "billing.mrr", "score": 101},
        {"key": "billing.mrr", "score": "high"},
        {"key": "billing.mrr", "score": 10, "category": "money"},
    ],
)
def test_upsert_rejects_malformed_signals(make_customer, signal):
    customer = make_customer()
    with pytest.raises(ValueError):
        external_signals_upsert(
            workspace_id=customer.workspace_id, customer_id=customer.id, source="s", signals=[signal]
        )
    assert not ExternalSignal.objects.exists()


def test_upsert_for_another_workspaces_customer_writes_nothing(make_customer, other_workspace):
    customer = make_customer()
    assert (
        external_signals_upsert(
            workspace_id=other_workspace.id, customer_id=customer.id, source="stripe", signals=[_billing()]
        )
        == 0
    )
    assert not ExternalSignal.objects.exists()


def test_batch_upsert_replaces_each_customers_signals_and_rescores_once(
    make_customer, django_capture_on_commit_callbacks
):
    first, second = make_customer(), make_customer()
    ws = first.workspace_id
    with django_capture_on_commit_callbacks(execute=True):
        external_signals_upsert(
            workspace_id=ws, customer_id=first.id, source="stripe", signals=[_billing(10.0)]
        )
    scored_before = CustomerHealth.objects.get(customer=first).computed_at
    with django_capture_on_commit_callbacks(execute=True):
        written = external_signals_upsert_many(
            workspace_id=ws,
            source="stripe",
            signals={
                first.id: [{"key": "billing.overdue_amount", "score": 30.0, "value": 5.0}],
                second.id: [_billing(70.0)],
                "cus_00000000000000000000000000": [_billing(1.0)],
            },
        )
    assert written == 2
    assert sorted(ExternalSignal.objects.values_list("customer_id", "key", "score")) == sorted(
        [(first.id, "billing.overdue_amount", 30.0), (second.id, "billing.mrr", 70.0)]
    )
    scores = dict(Customer.objects.values_list("id", "health_score"))
    assert scores == {first.id: 30.0, second.id: 70.0}
    # One rescore for the whole batch: both customers carry the same, new computation time.
    computed = dict(CustomerHealth.objects.values_list("customer_id", "computed_at"))
    assert computed[first.id] == computed[second.id] > scored_before
    assert set(Customer.objects.values_list("health_computed_at", flat=True)) == {computed[first.id]}


def test_batch_upsert_costs_the_same_queries_for_2_or_20_customers(
    make_customer, django_capture_on_commit_callbacks
):
    """Set-based: the signals and the rescore after commit do not loop over customers."""
    ws = make_customer().workspace_id

    def upsert_batch(size: int) -> int:
        customers = [make_customer() for _ in range(size)]
        # The capture is outermost so it also counts the rescore run by the on_commit callbacks.
        with CaptureQueriesContext(connection) as queries, django_capture_on_commit_callbacks(execute=True):
            external_signals_upsert_many(
                workspace_id=ws,
                source="stripe",
                signals={customer.id: [_billing(60.0)] for customer in customers},
            )
        assert set(
            Customer.objects.filter(pk__in=[c.id for c in customers]).values_list("health_score", flat=True)
        ) == {60.0}
        return len(queries)

    upsert_batch(1)  # the workspace's first rescore creates its default health model
    assert upsert_batch(2) == upsert_batch(20)


def test_batch_upsert_replaces_per_source_in_one_statement(make_customer):
    """Replace per source, a key taken over from another source, defaults from the catalog, a
    null value; one set-based statement writes the batch."""
    first, second = make_customer(), make_customer()
    ws = first.workspace_id
    external_signals_upsert_many(
        workspace_id=ws,
        source="zendesk",
        signals={first.id: [{"key": "support.open_cases", "score": 40.0, "value": 3}]},
    )
    external_signals_upsert_many(
        workspace_id=ws,
        source="stripe",
        signals={
            first.id: [_billing(10.0), {"key": "billing.overdue_amount", "score": 20, "value": 5}],
            second.id: [_billing(20.0), {"key": "billing.failed_payments_90d", "score": 30.0}],
        },
    )
    with CaptureQueriesContext(connection) as queries:
        written = external_signals_upsert_many(
            workspace_id=ws,
            source="stripe",
            signals={
                first.id: [_billing(55.5), {"key": "support.open_cases", "score": 65, "value": None}],
                second.id: [],
            },
        )
    assert written == 2
    sql = " ".join(query["sql"] for query in queries.captured_queries)
    assert sql.count("jsonb_to_recordset") == 2  # the batch and its customers' kept keys
    open_cases = CATALOG["support.open_cases"]
    assert sorted(
        ExternalSignal.objects.values_list(
            "customer_id", "source", "key", "category", "label", "value", "unit", "score"
        )
    ) == sorted(
        [
            (first.id, "stripe", "billing.mrr", "billing", "MRR", 1200.0, "usd", 55.5),
            (
                first.id,
                "stripe",
                "support.open_cases",
                open_cases.category,
                open_cases.label,
                None,
                open_cases.unit,
                65.0,
            ),
        ]
    )
    assert set(ExternalSignal.objects.values_list("workspace_id", flat=True)) == {ws}
    assert len(set(ExternalSignal.objects.values_list("computed_at", flat=True))) == 1


@pytest.mark.parametrize("value", [float("nan"), float("inf"), True])
def test_upsert_refuses_a_value_that_is_not_a_finite_number(make_customer, value):
    customer = make_customer()
    with pytest.raises(ValueError, match="finite number"):
        external_signals_upsert(
            workspace_id=customer.workspace_id,
            customer_id=customer.id,
            source="stripe",
            signals=[_billing(value=value)],
        )
    assert not ExternalSignal.objects.exists()
