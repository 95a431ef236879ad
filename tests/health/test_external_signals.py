from __future__ import annotations

import pytest

from customers.models import Customer
from health.models import ExternalSignal
from health.services import external_signals_upsert


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
    from health.services import external_signals_upsert_many

    first, second = make_customer(), make_customer()
    ws = first.workspace_id
    with django_capture_on_commit_callbacks(execute=True):
        external_signals_upsert(
            workspace_id=ws, customer_id=first.id, source="stripe", signals=[_billing(10.0)]
        )
    from unittest import mock

    from health import services

    rescore = mock.Mock(wraps=services.rescore_customers)
    # The patch is entered first so it is still active when the captured callbacks run.
    with (
        mock.patch.object(services, "rescore_customers", rescore),
        django_capture_on_commit_callbacks(execute=True),
    ):
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
    assert rescore.call_count == 1  # one set-based rescore for the whole batch
    assert sorted(ExternalSignal.objects.values_list("customer_id", "key", "score")) == sorted(
        [(first.id, "billing.overdue_amount", 30.0), (second.id, "billing.mrr", 70.0)]
    )
    scores = dict(Customer.objects.values_list("id", "health_score"))
    assert scores == {first.id: 30.0, second.id: 70.0}
