"""History: daily and weekly points, defaults and limits, backfill from events, the rollup."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from health.models import CustomerHealth, HealthSnapshot
from health.services import end_of_day
from tests.health.conftest import add_events

TODAY = timezone.now().date()


def snap(customer, day: date, score: float | None, version: int = 1, status: str = "neutral"):
    HealthSnapshot.objects.update_or_create(
        customer_id=customer.id,
        date=day,
        defaults={
            "workspace_id": customer.workspace_id,
            "score": score,
            "status": status,
            "model_version": version,
            "computed_at": timezone.now(),
        },
    )


def test_daily_history_defaults_to_the_last_90_days_oldest_first(client, make_customer):
    customer = make_customer()
    for days in (0, 5, 89, 90):
        snap(customer, TODAY - timedelta(days=days), 50.0 + days)
    body = client.get(f"/v1/customers/{customer.id}/health/history").json()
    assert body["object"] == "list"
    assert body["granularity"] == "daily"
    assert body["data"] == [
        {
            "date": (TODAY - timedelta(days=89)).isoformat(),
            "score": 139.0,
            "status": "neutral",
            "model_version": 1,
            "churn_probability": None,
        },
        {
            "date": (TODAY - timedelta(days=5)).isoformat(),
            "score": 55.0,
            "status": "neutral",
            "model_version": 1,
            "churn_probability": None,
        },
        {
            "date": TODAY.isoformat(),
            "score": 50.0,
            "status": "neutral",
            "model_version": 1,
            "churn_probability": None,
        },
    ]


def test_weekly_points_are_dated_on_monday_with_the_mean_score(client, make_customer):
    customer = make_customer()
    monday = date(2026, 3, 2)
    for offset, score in enumerate([30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 90.0]):  # Mon..Sun
        snap(customer, monday + timedelta(days=offset), score, version=1 if offset < 3 else 2)
    snap(customer, monday + timedelta(days=7), 20.0, version=2)
    url = f"/v1/customers/{customer.id}/health/history?granularity=weekly&start=2026-03-01&end=2026-03-10"
    body = client.get(url).json()
    assert body["granularity"] == "weekly"
    assert body["data"] == [
        {
            "date": "2026-03-02",
            "score": 60.0,
            "status": "unknown",
            "model_version": 2,
            "churn_probability": None,
        },
        {
            "date": "2026-03-09",
            "score": 20.0,
            "status": "unknown",
            "model_version": 2,
            "churn_probability": None,
        },
    ]


def test_weekly_status_uses_the_thresholds_of_the_points_model_version(client, make_customer):
    customer = make_customer()
    client.get("/v1/health/model")  # creates version 1
    for offset in range(7):
        snap(customer, date(2026, 3, 2) + timedelta(days=offset), 69.0 if offset % 2 else 72.0)
    url = f"/v1/customers/{customer.id}/health/history?granularity=weekly&start=2026-03-02&end=2026-03-08"
    point = client.get(url).json()["data"][0]
    assert point["score"] == pytest.approx((72 * 4 + 69 * 3) / 7, abs=0.01)
    assert point["status"] == "healthy"


def test_weekly_default_covers_26_weeks(client, make_customer):
    customer = make_customer()
    monday = TODAY - timedelta(days=TODAY.weekday())
    snap(customer, monday - timedelta(weeks=25), 10.0)
    snap(customer, monday - timedelta(weeks=26, days=-6), 20.0)  # the Sunday before: outside
    data = client.get(f"/v1/customers/{customer.id}/health/history?granularity=weekly").json()["data"]
    assert [point["date"] for point in data] == [(monday - timedelta(weeks=25)).isoformat()]


@pytest.mark.parametrize(
    ("query", "param"),
    [
        ("granularity=monthly", "granularity"),
        ("start=2026-02-30", "start"),
        ("start=yesterday", "start"),
        ("end=2026-1-5", "end"),
        ("start=2026-03-10&end=2026-03-01", "start"),
        ("start=2024-01-01&end=2025-12-31", "start"),
    ],
)
def test_bad_history_parameters_get_400(client, make_customer, query, param):
    customer = make_customer()
    response = client.get(f"/v1/customers/{customer.id}/health/history?{query}")
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["code"], error["param"]) == ("parameter_invalid", param)


def test_730_days_is_the_longest_range(client, make_customer):
    customer = make_customer()
    response = client.get(f"/v1/customers/{customer.id}/health/history?start=2024-01-01&end=2025-12-30")
    assert response.status_code == 200


def test_backfill_builds_history_from_the_events_as_of_each_day(make_customer):
    customer = make_customer()
    start = TODAY - timedelta(days=10)
    # Active every day from 10 days ago to 6 days ago, then silent.
    add_events(
        customer,
        [end_of_day(start + timedelta(days=n)) - timedelta(hours=3) for n in range(5)],
        types=["a", "b", "c", "d", "e"],
        users=["u1", "u2", "u3"],
    )
    call_command("rollup_health_history", "--from", str(start), "--to", str(TODAY - timedelta(days=1)))
    points = dict(HealthSnapshot.objects.filter(customer=customer).values_list("date", "score"))
    assert sorted(points) == [start + timedelta(days=n) for n in range(10)]
    days = [points[start + timedelta(days=n)] for n in range(10)]
    assert days[0] < days[4]  # more active days accumulate
    assert days[5] > days[9]  # then recency decays
    assert not CustomerHealth.objects.exists()  # a backfill of past days leaves the current score alone


def test_rerunning_a_day_replaces_its_snapshot(make_customer):
    customer = make_customer()
    day = TODAY - timedelta(days=3)
    add_events(customer, [end_of_day(day) - timedelta(hours=1)])
    call_command("rollup_health_history", "--date", str(day))
    first = HealthSnapshot.objects.get(customer=customer, date=day)
    add_events(customer, [end_of_day(day) - timedelta(hours=2)], types=["export"])
    call_command("rollup_health_history", "--date", str(day))
    second = HealthSnapshot.objects.get(customer=customer, date=day)
    assert second.pk == first.pk
    assert second.score > first.score


def test_rollup_without_date_rescores_now_and_snapshots_today(make_customer):
    customer = make_customer()
    add_events(customer, [timezone.now() - timedelta(hours=1)])
    call_command("rollup_health_history")
    snapshot = HealthSnapshot.objects.get(customer=customer)
    assert snapshot.date == TODAY
    assert snapshot.score == CustomerHealth.objects.get(customer=customer).score


def test_nightly_task_files_yesterdays_snapshot(make_customer):
    from health.tasks import nightly_rollup

    customer = make_customer()
    add_events(customer, [timezone.now() - timedelta(days=1)])
    nightly_rollup.delay()
    assert HealthSnapshot.objects.get(customer=customer).date == TODAY - timedelta(days=1)


def test_nightly_rollup_is_scheduled_at_0015_utc():
    from django.conf import settings

    schedule = settings.CELERY_BEAT_SCHEDULE["health.nightly_rollup"]["schedule"]
    assert (schedule.hour, schedule.minute) == ({0}, {15})


@pytest.mark.parametrize(
    "args",
    [
        ["--date", "2026-13-01"],
        ["--from", "2026-01-02"],
        ["--date", "2026-01-01", "--from", "2026-01-01", "--to", "2026-01-02"],
        ["--workspace", "nope"],
    ],
)
def test_rollup_command_refuses_bad_arguments(workspace, args):
    with pytest.raises((CommandError, SystemExit)):
        call_command("rollup_health_history", *args)


def test_recompute_health_command(make_customer):
    customer = make_customer()
    add_events(customer, [timezone.now() - timedelta(hours=2)])
    call_command("recompute_health", "--customer", customer.id)
    assert CustomerHealth.objects.get(customer=customer).score is not None
    with pytest.raises(CommandError):
        call_command("recompute_health", "--customer", "cus_nope")
