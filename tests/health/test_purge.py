from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from customers.models import Customer
from customers.services import customer_purge
from health.models import CustomerHealth, ExternalSignal, HealthSnapshot
from health.services import external_signals_upsert, health_rollup
from tests.health.conftest import add_events


def test_deleting_a_customer_removes_its_signals_and_history(
    make_customer, django_capture_on_commit_callbacks
):
    customer, keeper = make_customer(), make_customer()
    for c in (customer, keeper):
        add_events(c, [timezone.now() - timedelta(days=1)])
        with django_capture_on_commit_callbacks(execute=True):
            external_signals_upsert(
                workspace_id=c.workspace_id,
                customer_id=c.id,
                source="zendesk",
                signals=[{"key": "support.open_cases", "score": 50.0, "value": 1.0}],
            )
    health_rollup()
    assert HealthSnapshot.objects.filter(customer=customer).exists()
    Customer.all_objects.filter(pk=customer.pk).update(deleted_at=timezone.now())
    from events.models import Event

    Event.objects.filter(
        customer_id=customer.id
    ).delete()  # the events app's own purger may not be registered
    assert customer_purge(customer_id=customer.id)
    for model in (CustomerHealth, ExternalSignal, HealthSnapshot):
        assert not model.objects.filter(customer_id=customer.id).exists(), model
        assert model.objects.filter(customer_id=keeper.id).exists(), model
