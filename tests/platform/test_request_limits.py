"""The app's own limits on the request line and its Host check, for every path: a query string of
at most 4,096 bytes and 100 parameters, a Host in ALLOWED_HOSTS, else the JSON envelope."""

from __future__ import annotations

import pytest
from django.conf import settings

from tests.platform.helpers import assert_error

PATHS = ["/v1/customers", "/v1/events", "/v1/health/at-risk", "/healthz", "/docs/", "/admin/"]


def query_of(length: int) -> str:
    return "q=" + "a" * (length - 2)


def test_limits_sit_below_gunicorns():
    # gunicorn.conf.py: limit_request_line = 8190; the app's answer must come first.
    assert settings.PERLY_MAX_QUERY_STRING_BYTES + len("GET /v1/health/at-risk? HTTP/1.1") < 8190
    assert settings.PERLY_MAX_QUERY_PARAMS < settings.DATA_UPLOAD_MAX_NUMBER_FIELDS


@pytest.mark.parametrize("path", PATHS)
def test_a_query_over_the_byte_limit_is_a_414(client, path):
    limit = settings.PERLY_MAX_QUERY_STRING_BYTES
    response = client.get(f"{path}?{query_of(limit + 1)}")
    assert_error(
        response,
        414,
        "invalid_request_error",
        "uri_too_long",
        f"The query string is {limit + 1} bytes long; at most {limit} are accepted.",
    )


def test_a_query_at_the_byte_limit_is_served(client):
    response = client.get(f"/healthz?{query_of(settings.PERLY_MAX_QUERY_STRING_BYTES)}")
    assert response.status_code == 200


@pytest.mark.parametrize("path", PATHS)
def test_too_many_query_parameters_is_a_400(client, path):
    limit = settings.PERLY_MAX_QUERY_PARAMS
    query = "&".join(f"p{i}=1" for i in range(limit + 1))
    response = client.get(f"{path}?{query}")
    assert_error(
        response,
        400,
        "invalid_request_error",
        "parameter_invalid",
        f"Too many query parameters: at most {limit} are accepted.",
    )


def test_repeats_of_one_parameter_count_too(client):
    query = "&".join(["type=login"] * (settings.PERLY_MAX_QUERY_PARAMS + 1))
    assert_error(client.get(f"/v1/events?{query}"), 400, "invalid_request_error", "parameter_invalid")


def test_parameters_at_the_limit_are_served(client):
    query = "&".join(f"p{i}=1" for i in range(settings.PERLY_MAX_QUERY_PARAMS))
    assert client.get(f"/healthz?{query}").status_code == 200


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("authenticated", [True, False])
def test_a_host_outside_allowed_hosts_is_a_400(client, anon_client, path, authenticated):
    caller = client if authenticated else anon_client
    response = caller.get(path, HTTP_HOST="evil.example")
    assert_error(
        response,
        400,
        "invalid_request_error",
        "parameter_invalid",
        "The Host header names a host this server does not serve.",
        param="Host",
    )


def test_a_bad_host_changes_nothing(client):
    from customers.models import Customer

    response = client.post("/v1/customers", {"name": "Initech"}, HTTP_HOST="evil.example")
    assert response.status_code == 400
    assert not Customer.objects.exists()
