from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from health import demo
from health.models import CustomerHealth, HealthSnapshot
from tests.health.conftest import add_events


def test_demo_backfills_six_weeks_of_history(workspace, make_customer):
    busy, quiet = make_customer("Busy"), make_customer("Quiet")
    now = timezone.now()
    add_events(
        busy,
        [now - timedelta(days=day, hours=3) for day in range(42)],
        types=["a", "b", "c", "d", "e"],
        users=["u1", "u2", "u3"],
    )
    add_events(quiet, [now - timedelta(days=40 + day) for day in range(2)])
    demo.seed(workspace)
    today = now.date()
    dates = set(HealthSnapshot.objects.filter(customer=busy).values_list("date", flat=True))
    assert {today - timedelta(days=n) for n in range(41)} <= dates  # every day since its first event
    assert min(dates) >= today - timedelta(days=42)
    statuses = dict(CustomerHealth.objects.values_list("customer_id", "status"))
    assert statuses == {busy.id: "healthy", quiet.id: "at_risk"}


def test_demo_does_nothing_without_events(workspace, make_customer):
    make_customer()
    demo.seed(workspace)
    assert not HealthSnapshot.objects.exists()
    assert not CustomerHealth.objects.exists()
