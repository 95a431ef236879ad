"""Failed authentication is throttled per address before any key lookup, a request without a key
costs nothing, and the per-process key cache cannot grow without bound."""

from __future__ import annotations

import secrets

import pytest
from django.conf import settings
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from perly import apikeys
from perly.apikeys import hash_key
from tests.platform.helpers import assert_error, assert_rate_headers, start_early_in_a_window


@pytest.fixture(autouse=True)
def _one_window():
    # Fixed windows: spending a bucket and checking it must not straddle a minute boundary.
    start_early_in_a_window()


ADDRESS = "192.0.2.44"
NO_KEY = "No API key provided. Send 'Authorization: Bearer pk_live_...'."


def _guess() -> str:
    return f"Bearer pk_live_{secrets.token_urlsafe(32)}"


def _use_up_failures(anon_client, limit: int, address: str = ADDRESS) -> None:
    for _ in range(limit):
        response = anon_client.get("/v1/customers", HTTP_AUTHORIZATION=_guess(), REMOTE_ADDR=address)
        assert response.status_code == 401


@override_settings(PERLY_RATE_LIMITS={**settings.PERLY_RATE_LIMITS, "anonymous": 3})
@pytest.mark.parametrize(
    "header", ["valid", "unknown", "Bearer pk_live_short", "Basic dXNlcjpwYXNz", "Bearer   "]
)
def test_an_address_over_its_failures_gets_429_before_any_lookup(anon_client, client, header):
    _use_up_failures(anon_client, 3)
    apikeys.clear_key_cache()  # a lookup, if one ran, would have to query
    authorization = {"valid": f"Bearer {client.secret}", "unknown": _guess()}.get(header, header)
    with CaptureQueriesContext(connection) as queries:
        response = anon_client.get("/v1/customers", HTTP_AUTHORIZATION=authorization, REMOTE_ADDR=ADDRESS)
    assert_error(response, 429, "rate_limit_error", "rate_limit_exceeded", param=None)
    assert_rate_headers(response, "anonymous", limit=3, remaining=0)
    assert 1 <= int(response["Retry-After"]) <= 60
    assert queries.captured_queries == []
    assert apikeys._cache == {}


@override_settings(PERLY_RATE_LIMITS={**settings.PERLY_RATE_LIMITS, "anonymous": 3})
def test_the_valid_key_works_again_from_another_address(anon_client, client):
    _use_up_failures(anon_client, 3)
    assert client.get("/v1/customers", REMOTE_ADDR="192.0.2.45").status_code == 200


@override_settings(PERLY_RATE_LIMITS={**settings.PERLY_RATE_LIMITS, "anonymous": 2})
def test_an_ipv6_address_is_counted_by_its_64(anon_client, client):
    _use_up_failures(anon_client, 2, address="2001:db8:1:2::1")
    response = client.get("/v1/customers", REMOTE_ADDR="2001:db8:1:2:ffff::9")
    assert response.status_code == 429
    assert client.get("/v1/customers", REMOTE_ADDR="2001:db8:1:3::1").status_code == 200


@override_settings(PERLY_RATE_LIMITS={**settings.PERLY_RATE_LIMITS, "anonymous": 2})
def test_no_authorization_header_is_a_plain_401_that_costs_nothing(anon_client, db):
    for _ in range(10):
        with CaptureQueriesContext(connection) as queries:
            response = anon_client.get("/v1/customers", REMOTE_ADDR=ADDRESS)
        assert_error(response, 401, "authentication_error", "invalid_api_key", NO_KEY, param=None)
        assert_rate_headers(response, "anonymous", limit=2, remaining=2)
        assert queries.captured_queries == []
    # The failures budget is untouched, and once it is spent a keyless request is still a 401.
    response = anon_client.get("/v1/customers", HTTP_AUTHORIZATION=_guess(), REMOTE_ADDR=ADDRESS)
    assert_rate_headers(response, "anonymous", limit=2, remaining=1)
    _use_up_failures(anon_client, 1)
    response = anon_client.get("/v1/customers", REMOTE_ADDR=ADDRESS)
    assert response.status_code == 401
    assert_rate_headers(response, "anonymous", limit=2, remaining=0)


@override_settings(PERLY_RATE_LIMITS={**settings.PERLY_RATE_LIMITS, "anonymous": 2})
def test_fetching_the_spec_does_not_spend_the_failures_budget(anon_client, client):
    for _ in range(2):
        assert anon_client.get("/v1/openapi.json", REMOTE_ADDR=ADDRESS).status_code == 200
    assert anon_client.get("/v1/openapi.json", REMOTE_ADDR=ADDRESS).status_code == 429
    assert client.get("/v1/customers", REMOTE_ADDR=ADDRESS).status_code == 200


@override_settings(
    PERLY_API_KEY_CACHE_SIZE=5, PERLY_RATE_LIMITS={**settings.PERLY_RATE_LIMITS, "anonymous": 1000}
)
def test_the_key_cache_is_bounded_and_keeps_the_recently_used(anon_client, client):
    valid = hash_key(client.secret)
    assert client.get("/v1/customers").status_code == 200
    for round_ in range(10):
        for _ in range(4):
            assert anon_client.get("/v1/customers", HTTP_AUTHORIZATION=_guess()).status_code == 401
            assert len(apikeys._cache) <= 5
        # Used between every four guesses, the real key is never the least recently used.
        assert valid in apikeys._cache, round_
        with CaptureQueriesContext(connection) as queries:
            assert client.get("/v1/customers").status_code == 200
        assert not [q for q in queries.captured_queries if "perly_apikey" in q["sql"]]
    for _ in range(5):
        anon_client.get("/v1/customers", HTTP_AUTHORIZATION=_guess())
    assert len(apikeys._cache) == 5
    assert valid not in apikeys._cache
    assert client.get("/v1/customers").status_code == 200  # evicted means looked up again


def test_the_default_cache_size_is_documented():
    assert settings.PERLY_API_KEY_CACHE_SIZE == 10_000
    readme = (settings.BASE_DIR / "README.md").read_text()
    assert "PERLY_API_KEY_CACHE_SIZE" in readme


@override_settings(
    PERLY_TRUSTED_PROXY_COUNT=1, PERLY_RATE_LIMITS={**settings.PERLY_RATE_LIMITS, "anonymous": 2}
)
def test_behind_a_trusted_proxy_the_forwarded_client_is_counted(anon_client, client):
    # Every request comes from the proxy's address; the guesser cannot shift the blame by
    # prepending entries of its own to X-Forwarded-For.
    for spoofed in ("203.0.113.1", "203.0.113.2"):
        response = anon_client.get(
            "/v1/customers",
            HTTP_AUTHORIZATION=_guess(),
            REMOTE_ADDR="10.0.0.1",
            HTTP_X_FORWARDED_FOR=f"{spoofed}, 198.51.100.7",
        )
        assert response.status_code == 401
    throttled = client.get("/v1/customers", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="198.51.100.7")
    assert throttled.status_code == 429
    other = client.get("/v1/customers", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="198.51.100.8")
    assert other.status_code == 200
