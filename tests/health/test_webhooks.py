"""health.score_changed / status_changed / at_risk, published in the scoring transaction."""

from __future__ import annotations

from health.services import external_signals_upsert


def _set_score(customer, score: float, capture) -> None:
    with capture(execute=True):
        external_signals_upsert(
            workspace_id=customer.workspace_id,
            customer_id=customer.id,
            source="stripe",
            signals=[{"key": "billing.mrr", "score": score, "value": 10.0}],
        )


def test_first_score_is_a_baseline_then_changes_are_published(
    make_customer, published, django_capture_on_commit_callbacks
):
    customer = make_customer()
    _set_score(customer, 50.0, django_capture_on_commit_callbacks)
    assert published == []
    _set_score(customer, 80.0, django_capture_on_commit_callbacks)
    assert [call["event_type"] for call in published] == ["health.status_changed", "health.score_changed"]
    call = published[1]
    assert call["workspace_id"] == customer.workspace_id
    assert call["previous_attributes"] == {"score": 50.0, "status": "neutral"}
    data = call["data_object"]
    assert (data["object"], data["customer"], data["score"], data["status"]) == (
        "health_score",
        customer.id,
        80.0,
        "healthy",
    )
    assert data["signals"][0]["key"] == "billing.mrr"
    assert published[0]["previous_attributes"] == {"status": "neutral", "score": 50.0}


def test_small_moves_do_not_notify_until_they_add_up_to_5_points(
    make_customer, published, django_capture_on_commit_callbacks
):
    customer = make_customer()
    _set_score(customer, 80.0, django_capture_on_commit_callbacks)
    published.clear()
    _set_score(customer, 77.0, django_capture_on_commit_callbacks)
    _set_score(customer, 76.0, django_capture_on_commit_callbacks)
    assert published == []
    _set_score(customer, 75.0, django_capture_on_commit_callbacks)
    assert [call["event_type"] for call in published] == ["health.score_changed"]
    assert published[0]["previous_attributes"] == {"score": 80.0, "status": "healthy"}


def test_crossing_below_the_at_risk_threshold(make_customer, published, django_capture_on_commit_callbacks):
    customer = make_customer()
    _set_score(customer, 50.0, django_capture_on_commit_callbacks)
    published.clear()
    _set_score(customer, 20.0, django_capture_on_commit_callbacks)
    assert [call["event_type"] for call in published] == [
        "health.status_changed",
        "health.score_changed",
        "health.at_risk",
    ]
    assert published[2]["previous_attributes"] == {"status": "neutral", "score": 50.0}
    assert published[2]["data_object"]["status"] == "at_risk"
    published.clear()
    _set_score(customer, 10.0, django_capture_on_commit_callbacks)  # already at risk: only the score moved
    assert [call["event_type"] for call in published] == ["health.score_changed"]


def test_unchanged_rescore_publishes_nothing(make_customer, published, django_capture_on_commit_callbacks):
    from health.services import rescore_customers

    customer = make_customer()
    _set_score(customer, 50.0, django_capture_on_commit_callbacks)
    published.clear()
    rescore_customers(workspace_id=customer.workspace_id)
    assert published == []
