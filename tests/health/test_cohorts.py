"""GET /v1/health/metrics/:key/cohorts: churn by metric group as of a past date."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from customers.models import Customer, Outcome
from health.cohorts import wilson
from health.models import CustomerHealth, HealthSnapshot
from health.services import end_of_day
from tests.health.conftest import add_events

TODAY = timezone.now().date()
AS_OF = TODAY - timedelta(days=40)
END = end_of_day(AS_OF)
EXPORTS = {
    "key": "custom.exports",
    "label": "Exports",
    "category": "usage",
    "aggregate": "count",
    "event_types": ["export"],
    "window_days": 28,
}


def _outcome(customer, kind, at):
    Outcome.objects.create(
        workspace_id=customer.workspace_id, customer=customer, kind=kind, at=at, source="api"
    )


@pytest.fixture
def history(client, make_customer):
    """Ten customers with 1..10 exports in the 28 days before AS_OF (and one after, which must not
    count), their churn recorded around it."""
    assert client.post("/v1/health/metrics", EXPORTS, format="json").status_code == 201
    customers = []
    for count in range(1, 11):
        customer = make_customer(f"C{count}")
        add_events(customer, [END - timedelta(days=1, hours=n) for n in range(count)], types=["export"])
        add_events(customer, [END + timedelta(hours=1)] * 50, types=["export"])  # after as_of: not seen
        customers.append(customer)
    _outcome(customers[0], "churned", END + timedelta(days=5))  # within the horizon
    _outcome(customers[1], "churned", END + timedelta(days=30))  # the horizon's last instant
    _outcome(customers[2], "churned", END + timedelta(days=30, seconds=1))  # after the horizon
    _outcome(customers[3], "churned", END - timedelta(days=2))  # churned already: not observed
    _outcome(customers[4], "churned", END - timedelta(days=9))  # won back before as_of: observed
    _outcome(customers[4], "reactivated", END - timedelta(days=3))
    _outcome(customers[5], "churned", END + timedelta(days=1))
    # Imported history: created today, events long before.
    Customer.objects.filter(pk__in=[c.pk for c in customers]).update(created_at=timezone.now())
    return customers


def test_groups_add_up_and_count_churn_within_the_horizon_only(client, history):
    health_rows, snapshots = CustomerHealth.objects.count(), HealthSnapshot.objects.count()
    body = client.get(
        "/v1/health/metrics/custom.exports/cohorts",
        {"as_of": AS_OF.isoformat(), "horizon_days": 30, "groups": 3},
    ).json()
    assert body["object"] == "metric_cohorts" and body["metric"] == "custom.exports"
    assert body["as_of"] == AS_OF.isoformat() and body["horizon_days"] == 30
    assert body["observations"] == 9  # ten, less the one churned before as_of
    groups = body["groups"]
    assert [g["customers"] for g in groups] == [3, 3, 3]
    assert sum(g["customers"] for g in groups) == body["observations"]
    # Values as of the end of the day: 1..10 exports, without C4 (4), lowest first.
    assert [(g["min"], g["max"]) for g in groups] == [(1.0, 3.0), (5.0, 7.0), (8.0, 10.0)]
    assert groups[0]["mean"] == 2.0
    # C1 and C2 churned within the horizon; C3 a second after it; C6 one day after as_of.
    assert [g["churned"] for g in groups] == [2, 1, 0]
    assert groups[0]["churn_rate"] == round(2 / 3, 4)
    assert body["overall_churn_rate"] == round(3 / 9, 4)
    low, high = wilson(2, 3)
    assert groups[0]["interval"] == {"low": round(low, 4), "high": round(high, 4)}
    # Nothing is written.
    assert (CustomerHealth.objects.count(), HealthSnapshot.objects.count()) == (health_rows, snapshots)


def test_score_and_builtin_signals_have_cohorts_too(client, history):
    for key in ("score", "usage.active_days_30d"):
        body = client.get(
            f"/v1/health/metrics/{key}/cohorts", {"as_of": AS_OF.isoformat(), "groups": 4}
        ).json()
        assert body["metric"] == key
        assert body["observations"] == 9
        assert sum(g["customers"] for g in body["groups"]) == 9
        assert sum(g["churned"] for g in body["groups"]) == 3
        assert [g["min"] for g in body["groups"]] == sorted(g["min"] for g in body["groups"])


def test_more_groups_than_observations(client, history):
    body = client.get(
        "/v1/health/metrics/custom.exports/cohorts", {"as_of": AS_OF.isoformat(), "groups": 20}
    ).json()
    assert len(body["groups"]) == 9 and all(g["customers"] == 1 for g in body["groups"])


@pytest.mark.parametrize(
    ("query", "param"),
    [
        ({"horizon_days": "0"}, "horizon_days"),
        ({"horizon_days": "366"}, "horizon_days"),
        ({"horizon_days": "ten"}, "horizon_days"),
        ({"groups": "1"}, "groups"),
        ({"groups": "21"}, "groups"),
        ({"as_of": (TODAY - timedelta(days=731)).isoformat()}, "as_of"),
        ({"as_of": (TODAY - timedelta(days=29)).isoformat()}, "as_of"),
        ({"as_of": (TODAY - timedelta(days=10)).isoformat(), "horizon_days": "11"}, "as_of"),
        ({"as_of": "2026-13-01"}, "as_of"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_limits(client, history, query, param):
    response = client.get("/v1/health/metrics/custom.exports/cohorts", query)
    assert response.status_code == 400, response.content
    assert response.json()["error"]["param"] == param


def test_unknown_metric_and_another_workspace_are_404(client, other_client, history):
    assert client.get("/v1/health/metrics/custom.nope/cohorts").status_code == 404
    assert client.get("/v1/health/metrics/billing.nope/cohorts").status_code == 404
    response = other_client.get("/v1/health/metrics/custom.exports/cohorts", {"as_of": AS_OF.isoformat()})
    assert response.status_code == 404 and response.json()["error"]["code"] == "resource_missing"
    # Built-ins and the score exist everywhere, but another workspace sees only its own customers.
    body = other_client.get("/v1/health/metrics/score/cohorts", {"as_of": AS_OF.isoformat()}).json()
    assert body["observations"] == 0 and body["groups"] == [] and body["overall_churn_rate"] is None


def test_wilson_interval():
    low, high = wilson(2, 10)
    assert (round(low, 4), round(high, 4)) == (0.0567, 0.5098)
    assert wilson(0, 5)[0] == 0.0 and wilson(5, 5)[1] == 1.0


def test_cached_until_the_next_rescore(client, history):
    from health import generation

    url, query = "/v1/health/metrics/custom.exports/cohorts", {"as_of": AS_OF.isoformat(), "groups": 3}
    first = client.get(url, query).json()
    _outcome(history[9], "churned", END + timedelta(days=2))
    assert client.get(url, query).json() == first  # the same computation, from the cache
    generation.bump(history[9].workspace_id)  # what every rescore does
    fresh = client.get(url, query).json()
    assert [g["churned"] for g in fresh["groups"]] == [2, 1, 1]


def test_a_derived_metric_over_distinct_types_counts_the_types(client, make_customer):
    """A ratio whose numerator is usage.breadth_30d (distinct event types) groups by the real
    count of types, though the metric itself is a ratio: the one-metric pass must still carry
    the event type."""
    body = {
        "key": "custom.types_per_user",
        "label": "Types per user",
        "category": "usage",
        "aggregate": "ratio",
        "numerator": "usage.breadth_30d",
        "denominator": "engagement.distinct_users_30d",
    }
    assert client.post("/v1/health/metrics", body, format="json").status_code == 201
    for types in (1, 2, 3, 4):
        customer = make_customer(f"T{types}")
        add_events(
            customer,
            [END - timedelta(days=1, hours=n) for n in range(types)],
            types=[f"type{n}" for n in range(types)],
            users=["u1"],
        )
    cohorts = client.get(
        "/v1/health/metrics/custom.types_per_user/cohorts",
        {"as_of": AS_OF.isoformat(), "horizon_days": 30, "groups": 4},
    ).json()
    assert [(g["min"], g["max"]) for g in cohorts["groups"]] == [
        (1.0, 1.0),
        (2.0, 2.0),
        (3.0, 3.0),
        (4.0, 4.0),
    ]


def test_a_customer_that_existed_without_events_counts_with_zero(
    client, other_client, history, make_customer, other_workspace
):
    """The issue's rule: a customer counts at a past date if it was created by then, or has an
    event or signal at or before it. One created before as_of with no event yet had 0 exports
    (the customers most likely to churn); one created after it, with nothing before it, did not
    exist yet. A score needs an event or a signal, so the score's cohorts do not change."""
    from health.models import ExternalSignal

    quiet = make_customer("Quiet")
    Customer.objects.filter(pk=quiet.pk).update(created_at=END - timedelta(days=3))
    _outcome(quiet, "churned", END + timedelta(days=10))
    billed = make_customer("Billed only")  # created today; a billing signal from before as_of
    ExternalSignal.objects.create(
        workspace_id=billed.workspace_id,
        customer=billed,
        source="stripe",
        key="billing.failed_payments_90d",
        category="billing",
        label="Failed payments",
        value=0.0,
        score=100.0,
        computed_at=END - timedelta(days=1),
    )
    make_customer("Newcomer")  # created today, nothing before as_of: not observed
    gone = make_customer("Deleted since")  # existed at as_of, soft-deleted now: not observed
    Customer.objects.filter(pk=gone.pk).update(created_at=END - timedelta(days=3), deleted_at=timezone.now())
    elsewhere = make_customer("Another workspace's", ws=other_workspace)
    Customer.objects.filter(pk=elsewhere.pk).update(created_at=END - timedelta(days=3))
    body = client.get(
        "/v1/health/metrics/custom.exports/cohorts",
        {"as_of": AS_OF.isoformat(), "horizon_days": 30, "groups": 3},
    ).json()
    assert body["observations"] == 11  # the nine of the history, Quiet and Billed only
    groups = body["groups"]
    assert [g["customers"] for g in groups] == [4, 4, 3]
    assert (groups[0]["min"], groups[0]["max"]) == (0.0, 2.0)
    assert groups[0]["churned"] == 3  # Quiet, C1 and C2 (the horizon's last instant)
    recency = client.get(
        "/v1/health/metrics/engagement.recency_days/cohorts", {"as_of": AS_OF.isoformat(), "groups": 3}
    ).json()
    assert recency["observations"] == 9  # no event yet: no recency
    score = client.get("/v1/health/metrics/score/cohorts", {"as_of": AS_OF.isoformat(), "groups": 3}).json()
    assert score["observations"] == 10  # Billed only has a score from its signal; Quiet has none
    theirs = other_client.get(
        "/v1/health/metrics/usage.active_days_30d/cohorts", {"as_of": AS_OF.isoformat(), "groups": 3}
    ).json()
    assert theirs["observations"] == 1  # their own customer only, with 0 active days
    assert theirs["groups"][0]["max"] == 0.0
