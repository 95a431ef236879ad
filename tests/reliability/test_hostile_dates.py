"""Every date and datetime query parameter, found in the served OpenAPI document, answers a
hostile value with a 400 in the envelope (never the 500 an overflowing date arithmetic gave),
and accepts the ends of the documented range (perly.dates: 1900-01-01 to 2999-12-31)."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from customers.models import Customer
from perly.dates import MAX_DATE, MIN_DATE

pytestmark = pytest.mark.django_db

HOSTILE_DATES = [
    "0001-01-01",
    "0001-01-05",  # the finding: history's default start is 89 days before
    "0001-06-01",  # ... and, weekly, 26 weeks before
    "0001-12-31",
    "1899-12-31",
    "3000-01-01",
    "9999-12-31",
    "0000-01-01",
    "10000-01-01",
    "+02026-01-01",
    "2026-02-30",
    "2026-1-1",
    "2026-W01-1",
    "2026-001",
    "20260101",
    "２０２６-01-01",
]
HOSTILE_DATETIMES = HOSTILE_DATES + [
    "0001-01-01T00:00:00+01:00",  # converting to UTC underflows year 1
    "9999-12-31T23:00:00-05:00",  # converting to UTC overflows year 9999
    "1899-12-31T23:59:59Z",
    "3000-01-01T00:00:00Z",
    "2999-12-31T23:00:00-05:00",  # in range as written, next year in UTC
    "2026-01-01T25:00:00Z",
    "2026-01-01T00:00:00+24:00",
]


def _date_parameters(anon_client) -> list[tuple[str, str, str]]:
    spec = anon_client.get("/v1/openapi.json").json()
    found = []
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            for parameter in operation.get("parameters", []):
                fmt = (parameter.get("schema") or {}).get("format")
                if parameter["in"] == "query" and fmt in ("date", "date-time"):
                    found.append((method, path, parameter["name"], fmt))
    return found


@pytest.fixture
def customer(workspace):
    return Customer.objects.create(workspace_id=workspace.id, name="Initech")


# Date parameters documented with a narrower window than perly.dates' range: the ends of that
# range are a 400 naming the parameter there (cohorts: as_of at most 730 days back and at least
# horizon_days in the past).
NARROWER = {("/v1/health/metrics/{key}/cohorts", "as_of")}


def _get(client, path, customer, name, value, extra=""):
    params = {name: value, **dict([extra.split("=")] if extra else [])}
    if name == "start":
        params["end"] = value  # a range of one day: only the value itself is under test
    return client.get(path.replace("{id}", customer.id).replace("{key}", "score"), params)


def test_the_document_lists_every_date_parameter(anon_client):
    names = {(path, name) for _method, path, name, _fmt in _date_parameters(anon_client)}
    assert names >= {
        ("/v1/customers", "created_after"),
        ("/v1/customers", "created_before"),
        ("/v1/events", "timestamp_after"),
        ("/v1/events", "timestamp_before"),
        ("/v1/customers/{id}/health/history", "start"),
        ("/v1/customers/{id}/health/history", "end"),
        ("/v1/health/at-risk", "dropped_after"),
    }


@pytest.mark.parametrize("granularity", ["", "granularity=daily", "granularity=weekly"])
def test_hostile_values_are_400_in_the_envelope_on_every_date_parameter(
    client, anon_client, customer, granularity
):
    for method, path, name, fmt in _date_parameters(anon_client):
        assert method == "get"
        if granularity and "history" not in path:
            continue
        for value in HOSTILE_DATES if fmt == "date" else HOSTILE_DATETIMES:
            response = _get(client, path, customer, name, value, granularity)
            assert response.status_code == 400, (path, name, value, response.content)
            error = response.json()["error"]
            assert (error["type"], error["code"], error["param"]) == (
                "invalid_request_error",
                "parameter_invalid",
                name,
            ), (path, name, value)


@pytest.mark.parametrize("granularity", ["granularity=daily", "granularity=weekly"])
def test_the_ends_of_the_range_are_accepted(client, anon_client, customer, granularity):
    for _method, path, name, _fmt in _date_parameters(anon_client):
        extra = granularity if "history" in path else ""
        for day in (MIN_DATE, MAX_DATE):
            response = _get(client, path, customer, name, day.isoformat(), extra)
            if (path, name) in NARROWER:
                assert response.status_code == 400, (path, name, day, response.content)
                assert response.json()["error"]["param"] == name
                continue
            assert response.status_code == 200, (path, name, day, response.content)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(day=st.dates(min_value=date(1, 1, 1), max_value=date(9999, 12, 31)))
def test_any_calendar_date_as_history_end_is_200_or_400_never_500(client, customer, day):
    for granularity in ("daily", "weekly"):
        response = client.get(
            f"/v1/customers/{customer.id}/health/history",
            {"end": day.isoformat(), "granularity": granularity},
        )
        assert response.status_code == (200 if MIN_DATE <= day <= MAX_DATE else 400), response.content
