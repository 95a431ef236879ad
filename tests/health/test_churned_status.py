"""A churned customer is never shown as healthy or at risk: its health says `status: churned`.

It is still scored (history and backtests stay whole); a win-back brings its computed status back.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from health.services import rescore_customers
from tests.health.conftest import add_events

pytestmark = pytest.mark.django_db


@pytest.fixture
def active_customer(make_customer, workspace):
    customer = make_customer("Initech")
    now = timezone.now()
    add_events(customer, [now - timedelta(days=d, hours=1) for d in range(25)], users=["u1", "u2", "u3"])
    rescore_customers(workspace_id=workspace.id)
    return customer


def _health(client, customer_id):
    response = client.get(f"/v1/customers/{customer_id}/health")
    assert response.status_code == 200, response.content
    return response.json()


def test_a_churn_turns_the_status_to_churned_and_a_win_back_brings_it_back(
    client, active_customer, django_capture_on_commit_callbacks
):
    before = _health(client, active_customer.id)
    assert before["status"] in ("healthy", "neutral")
    with django_capture_on_commit_callbacks(execute=True):
        response = client.patch(f"/v1/customers/{active_customer.id}", {"lifecycle_stage": "churned"})
    assert response.status_code == 200, response.content

    churned = _health(client, active_customer.id)
    assert churned["status"] == "churned"
    assert churned["score"] == before["score"]  # still scored
    listed = client.get("/v1/customers", {"health_status": "churned"}).json()["data"]
    assert [c["id"] for c in listed] == [active_customer.id]
    assert client.get("/v1/health/summary").json()["by_status"]["churned"] == 1
    assert client.get("/v1/health/at-risk", {"threshold": 100}).json()["data"] == []

    with django_capture_on_commit_callbacks(execute=True):
        client.patch(f"/v1/customers/{active_customer.id}", {"lifecycle_stage": "active"})
    assert _health(client, active_customer.id)["status"] == before["status"]
    assert client.get("/v1/health/summary").json()["by_status"]["churned"] == 0


def test_a_backdated_churn_only_marks_scores_from_its_date(client, active_customer, workspace):
    """Backfilled days before the churn keep their computed status (the rescore reads
    churned_at as of the day it scores)."""
    churned_at = timezone.now() - timedelta(days=3)
    client.patch(f"/v1/customers/{active_customer.id}", {"churned_at": churned_at.isoformat()}, format="json")
    rescore_customers(workspace_id=workspace.id)
    assert _health(client, active_customer.id)["status"] == "churned"
    from health.services import health_backfill

    start = (timezone.now() - timedelta(days=6)).date()
    health_backfill(start=start, end=timezone.now().date() - timedelta(days=1))
    points = client.get(
        f"/v1/customers/{active_customer.id}/health/history", {"start": start.isoformat()}
    ).json()["data"]
    statuses = {p["date"]: p["status"] for p in points}
    early = (churned_at - timedelta(days=2)).date().isoformat()
    late = (churned_at + timedelta(days=1)).date().isoformat()
    assert statuses[early] != "churned"
    assert statuses[late] == "churned"
