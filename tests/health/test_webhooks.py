"""health.score_changed / status_changed / at_risk, written to the webhooks outbox in the scoring
transaction for an endpoint subscribed to the health events (and delivered to it)."""

from __future__ import annotations

from datetime import timedelta

import orjson
from django.utils import timezone

from health.models import ExternalSignal, HealthSnapshot
from health.rescore import rescore
from health.services import external_signals_upsert, health_model_current
from webhooks.models import WebhookMessage


def _set_score(customer, score: float, capture) -> None:
    with capture(execute=True):
        external_signals_upsert(
            workspace_id=customer.workspace_id,
            customer_id=customer.id,
            source="stripe",
            signals=[{"key": "billing.mrr", "score": score, "value": 10.0}],
        )


def _types(events: list[dict]) -> list[str]:
    return [event["type"] for event in events]


def test_first_score_is_a_baseline_then_changes_are_published(
    make_customer, health_outbox, django_capture_on_commit_callbacks
):
    customer = make_customer()
    _set_score(customer, 50.0, django_capture_on_commit_callbacks)
    assert health_outbox.new() == []
    _set_score(customer, 80.0, django_capture_on_commit_callbacks)
    events = health_outbox.new()
    assert _types(events) == ["health.status_changed", "health.score_changed"]
    assert set(WebhookMessage.objects.values_list("workspace_id", flat=True)) == {customer.workspace_id}
    status_changed, score_changed = events
    assert score_changed["object"] == "event"
    assert score_changed["data"]["previous_attributes"] == {"score": 50.0, "status": "neutral"}
    data = score_changed["data"]["object"]
    assert (data["object"], data["customer"], data["score"], data["status"]) == (
        "health_score",
        customer.id,
        80.0,
        "healthy",
    )
    assert data["signals"][0]["key"] == "billing.mrr"
    assert status_changed["data"]["previous_attributes"] == {"status": "neutral", "score": 50.0}
    assert status_changed["data"]["object"] == data
    # Eager tasks deliver once the scoring transaction commits: the receiver got these exact events.
    received = [orjson.loads(request.body) for request in health_outbox.receiver.received()]
    assert received == events


def test_small_moves_do_not_notify_until_they_add_up_to_5_points(
    make_customer, health_outbox, django_capture_on_commit_callbacks
):
    customer = make_customer()
    _set_score(customer, 80.0, django_capture_on_commit_callbacks)
    assert health_outbox.new() == []
    _set_score(customer, 77.0, django_capture_on_commit_callbacks)
    _set_score(customer, 76.0, django_capture_on_commit_callbacks)
    assert health_outbox.new() == []
    _set_score(customer, 75.0, django_capture_on_commit_callbacks)
    (event,) = health_outbox.new()
    assert event["type"] == "health.score_changed"
    assert event["data"]["previous_attributes"] == {"score": 80.0, "status": "healthy"}
    assert (event["data"]["object"]["score"], event["data"]["object"]["status"]) == (75.0, "healthy")


def test_crossing_below_the_at_risk_threshold(
    make_customer, health_outbox, django_capture_on_commit_callbacks
):
    customer = make_customer()
    _set_score(customer, 50.0, django_capture_on_commit_callbacks)
    assert health_outbox.new() == []
    _set_score(customer, 20.0, django_capture_on_commit_callbacks)
    events = health_outbox.new()
    assert _types(events) == ["health.status_changed", "health.score_changed", "health.at_risk"]
    at_risk = events[2]["data"]
    assert at_risk["previous_attributes"] == {"status": "neutral", "score": 50.0}
    assert (at_risk["object"]["customer"], at_risk["object"]["status"]) == (customer.id, "at_risk")
    _set_score(customer, 10.0, django_capture_on_commit_callbacks)  # already at risk: only the score moved
    (event,) = health_outbox.new()
    assert event["type"] == "health.score_changed"
    assert event["data"]["previous_attributes"] == {"score": 20.0, "status": "at_risk"}


def test_unchanged_rescore_publishes_nothing(
    make_customer, health_outbox, django_capture_on_commit_callbacks
):
    from health.services import rescore_customers

    customer = make_customer()
    _set_score(customer, 50.0, django_capture_on_commit_callbacks)
    assert health_outbox.new() == []
    rescore_customers(workspace_id=customer.workspace_id)
    assert health_outbox.new() == []
    assert not WebhookMessage.objects.exists()


def test_webhook_health_object_is_the_api_object_with_its_7_and_30_day_changes(
    make_customer, health_outbox, django_capture_on_commit_callbacks, client
):
    customer = make_customer()
    _set_score(customer, 50.0, django_capture_on_commit_callbacks)
    today = timezone.now().date()
    for days, score in ((7, 60.0), (30, 90.0)):
        HealthSnapshot.objects.create(
            workspace_id=customer.workspace_id,
            customer_id=customer.id,
            date=today - timedelta(days=days),
            score=score,
            status="neutral",
            model_version=1,
            computed_at=timezone.now(),
        )
    _set_score(customer, 80.0, django_capture_on_commit_callbacks)
    data = health_outbox.new()[-1]["data"]["object"]
    assert (data["change_7d"], data["change_30d"]) == (20.0, -10.0)
    assert data == client.get(f"/v1/customers/{customer.id}/health").json()


def test_one_rescore_of_many_customers_keeps_each_customers_event_order(
    workspace, make_customer, health_outbox, django_capture_on_commit_callbacks
):
    # One rescore publishes per event type, set-based: each customer's events still go out in
    # the order status_changed, score_changed, at_risk, whatever the other customers got.
    first, second = make_customer("First"), make_customer("Second")
    _set_score(first, 50.0, django_capture_on_commit_callbacks)
    _set_score(second, 50.0, django_capture_on_commit_callbacks)
    assert health_outbox.new() == []
    ExternalSignal.objects.filter(customer_id=first.id).update(score=58.0)  # score_changed only
    ExternalSignal.objects.filter(customer_id=second.id).update(score=20.0)  # all three
    with django_capture_on_commit_callbacks(execute=True):
        rescore(workspace_id=workspace.id, model=health_model_current(workspace_id=workspace.id))
    events = health_outbox.new()
    per_customer: dict[str, list[str]] = {}
    for event in events:
        per_customer.setdefault(event["data"]["object"]["customer"], []).append(event["type"])
    assert per_customer == {
        first.id: ["health.score_changed"],
        second.id: ["health.status_changed", "health.score_changed", "health.at_risk"],
    }
