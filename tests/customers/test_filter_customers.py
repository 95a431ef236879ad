"""Each list filter narrows the list; each bad value is a 400, never an empty list."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from customers.models import Customer
from tests.platform.helpers import assert_error


@pytest.fixture
def people(create):
    return {
        "initech": create(
            name="Initech",
            email="ops@initech.com",
            domain="initech.com",
            external_id="acct_1",
            plan="growth",
            owner="maya@perly.io",
            lifecycle_stage="active",
        ),
        "globex": create(
            name="Globex",
            email="hi@globex.io",
            domain="globex.io",
            external_id="acct_2",
            plan="starter",
            owner="jon@perly.io",
            lifecycle_stage="trial",
        ),
        "hooli": create(name="Hooli Labs", domain="hooli.xyz", plan="growth", lifecycle_stage="churned"),
    }


def _names(client, query: str) -> list[str]:
    response = client.get(f"/v1/customers?{query}")
    assert response.status_code == 200, response.content
    return sorted(item["name"] for item in response.json()["data"])


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("email=OPS@initech.com", ["Initech"]),
        ("external_id=acct_2", ["Globex"]),
        ("external_id=ACCT_2", []),
        ("domain=Hooli.xyz", ["Hooli Labs"]),
        ("plan=growth", ["Hooli Labs", "Initech"]),
        ("owner=jon@perly.io", ["Globex"]),
        ("lifecycle_stage=churned", ["Hooli Labs"]),
        ("plan=growth&lifecycle_stage=active", ["Initech"]),
        ("q=LABS", ["Hooli Labs"]),
        ("q=globex.io", ["Globex"]),
        ("q=acct_1", ["Initech"]),
        ("q=initech", ["Initech"]),
        ("q=zzz", []),
        ("health_status=unknown", ["Globex", "Hooli Labs", "Initech"]),
        ("health_status=healthy", []),
    ],
)
def test_filter(client, people, query, expected):
    assert _names(client, query) == expected


def test_health_filters(client, people):
    now = datetime.now(UTC)
    Customer.objects.filter(pk=people["initech"]["id"]).update(
        health_score=82.5, health_status="healthy", health_computed_at=now
    )
    Customer.objects.filter(pk=people["globex"]["id"]).update(
        health_score=31, health_status="at_risk", health_computed_at=now
    )
    assert _names(client, "health_status=healthy") == ["Initech"]
    assert _names(client, "health_status=at_risk") == ["Globex"]
    assert _names(client, "health_status=unknown") == ["Hooli Labs"]
    assert _names(client, "health_score_min=50") == ["Initech"]
    assert _names(client, "health_score_max=31") == ["Globex"]
    assert _names(client, "health_score_min=31&health_score_max=82.5") == ["Globex", "Initech"]
    health = client.get(f"/v1/customers/{people['initech']['id']}").json()["health"]
    assert health == {"score": 82.5, "status": "healthy", "computed_at": now.strftime("%Y-%m-%dT%H:%M:%SZ")}


def test_created_range(client, people):
    base = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
    for offset, key in enumerate(("initech", "globex", "hooli")):
        Customer.objects.filter(pk=people[key]["id"]).update(created_at=base + timedelta(days=offset))
    assert _names(client, "created_after=2026-03-11") == ["Globex", "Hooli Labs"]
    assert _names(client, "created_before=2026-03-11") == ["Initech"]
    assert _names(client, "created_after=2026-03-11T12:00:00Z") == ["Globex", "Hooli Labs"]
    assert _names(client, "created_before=2026-03-11T12:00:00Z") == ["Initech"]  # exclusive
    assert _names(client, "created_after=2026-03-11T12:00:00") == ["Globex", "Hooli Labs"]  # naive = UTC
    assert _names(client, "created_after=2026-03-11T13:00:00%2B02:00") == ["Globex", "Hooli Labs"]
    assert _names(client, "created_after=2026-03-11&created_before=2026-03-12") == ["Globex"]
    # Offsets PostgreSQL would refuse (beyond 15:59) are converted to UTC first.
    assert _names(client, "created_before=2265-07-01T07:09:10-20:52") == ["Globex", "Hooli Labs", "Initech"]
    assert _names(client, "created_after=2026-03-11T10:00:00-23:59") == ["Hooli Labs"]  # 03-12 09:59Z


@pytest.mark.parametrize(
    ("param", "value", "message"),
    [
        ("email", "not-an-email", "email: Enter a valid email address."),
        ("owner", "maya", "owner: Enter a valid email address."),
        (
            "lifecycle_stage",
            "zombie",
            "lifecycle_stage: Select a valid choice. zombie is not one of the available choices.",
        ),
        (
            "health_status",
            "great",
            "health_status: Select a valid choice. great is not one of the available choices.",
        ),
        ("health_score_min", "abc", "health_score_min: Enter a number."),
        ("health_score_min", "NaN", "health_score_min: Enter a number."),
        (
            "health_score_max",
            "101",
            "health_score_max: Ensure this value is less than or equal to 100.",
        ),
        (
            "health_score_min",
            "-1",
            "health_score_min: Ensure this value is greater than or equal to 0.",
        ),
        ("created_after", "yesterday", "created_after: Enter a date (YYYY-MM-DD) or an ISO 8601 datetime."),
        ("created_after", "2026-13-45", "created_after: Enter a date (YYYY-MM-DD) or an ISO 8601 datetime."),
        (
            "created_after",
            "9999-12-31T23:00:00-05:00",
            "created_after: Enter a date or datetime from 1900-01-01 to 2999-12-31 (UTC).",
        ),
        (
            "created_before",
            "2026-02-30T10:00:00Z",
            "created_before: Enter a date (YYYY-MM-DD) or an ISO 8601 datetime.",
        ),
        ("q", "x" * 201, "q: Ensure this value has at most 200 characters (it has 201)."),
        (
            "external_id",
            "x" * 256,
            "external_id: Ensure this value has at most 255 characters (it has 256).",
        ),
    ],
)
def test_bad_filter_value_is_400(client, people, param, value, message):
    response = client.get(f"/v1/customers?{param}={value}")
    assert_error(
        response,
        400,
        "invalid_request_error",
        "parameter_invalid",
        message,
        param=param,
        errors=[{"param": param, "code": "parameter_invalid", "message": message}],
    )


def test_filters_only_apply_to_lists(client, people):
    assert_error(
        client.get(f"/v1/customers/{people['initech']['id']}?plan=growth"),
        400,
        "invalid_request_error",
        "parameter_unknown",
        "Received unknown query parameter: plan.",
        param="plan",
    )


def test_filters_combine_with_pagination(client, people, create):
    for i in range(4):
        create(name=f"Growth {i}", plan="growth")
    first = client.get("/v1/customers?plan=growth&limit=3").json()
    second = client.get(f"/v1/customers?plan=growth&limit=3&starting_after={first['data'][-1]['id']}").json()
    names = [c["name"] for c in first["data"] + second["data"]]
    assert first["has_more"] is True and second["has_more"] is False
    assert sorted(names) == sorted(["Initech", "Hooli Labs"] + [f"Growth {i}" for i in range(4)])
