"""PostgreSQL unavailable: 503 in the error envelope (never an HTML 500), /readyz 503, and the
server recovers by itself when the database returns."""

from __future__ import annotations

import pytest

from perly.apikeys import api_key_create
from tests.faults.conftest import server_env
from tests.support.worker import wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]

UNAVAILABLE = {
    "type": "api_error",
    "code": "service_unavailable",
    "message": "The service is temporarily unavailable. Retry shortly.",
    "param": None,
}


def assert_unavailable(response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["Content-Type"] == "application/json"
    assert response.headers["Retry-After"] == "5"
    error = response.json()["error"]
    assert error.pop("request_id") == response.headers["Request-Id"]
    assert error == UNAVAILABLE


def test_requests_get_503_envelopes_and_readyz_503(start_server, pg_proxy, tenant):
    workspace, key = tenant
    server = start_server(server_env(pg_port=pg_proxy.port))
    customer_id = server.request("POST", "/v1/customers", key, json={"name": "Initech"}).json()["id"]
    _, fresh_key = api_key_create(workspace=workspace)  # never seen by the server: not cached
    pg_proxy.down()

    # The cached key authenticates; the query behind the view fails.
    assert_unavailable(server.request("GET", "/v1/customers", key))
    assert_unavailable(server.request("GET", f"/v1/customers/{customer_id}", key))
    assert_unavailable(server.request("PATCH", f"/v1/customers/{customer_id}", key, json={"name": "X"}))
    assert_unavailable(
        server.request("POST", "/v1/customers", key, json={"name": "Y"}, headers={"Idempotency-Key": "k1"})
    )
    assert_unavailable(
        server.request(
            "POST", "/v1/events", key, json={"events": [{"customer_id": customer_id, "type": "x"}]}
        )
    )
    # An uncached key needs the database to authenticate: the middleware answers the same way.
    assert_unavailable(server.request("GET", "/v1/customers", fresh_key))

    ready = server.request("GET", "/readyz")
    assert ready.status_code == 503
    assert ready.json()["checks"] == {"database": "unavailable", "redis": "ok"}
    assert server.request("GET", "/healthz").status_code == 200  # the process itself is fine

    pg_proxy.up()
    wait_for(
        lambda: server.request("GET", "/v1/customers", key).status_code == 200,
        timeout=30,
        message="the API to answer again after the database returned",
    )
    # Recovered for good, every thread and the idempotency key (the 503 did not burn it).
    for _ in range(10):
        assert server.request("GET", f"/v1/customers/{customer_id}", key).status_code == 200
    created = server.request(
        "POST", "/v1/customers", key, json={"name": "Y"}, headers={"Idempotency-Key": "k1"}
    )
    assert created.status_code == 201, created.text
    assert server.request("GET", "/readyz").status_code == 200
    assert server.request("GET", "/v1/customers", fresh_key).status_code == 200


def test_database_restart_while_idle_costs_no_request_with_health_checks(start_server, pg_proxy, tenant):
    """DATABASE_CONN_HEALTH_CHECKS=true: a persistent connection broken by a database restart is
    noticed before the request uses it (one `SELECT 1` per request)."""
    _, key = tenant
    server = start_server(server_env(pg_port=pg_proxy.port, DATABASE_CONN_HEALTH_CHECKS="true"), threads=1)
    assert server.request("GET", "/v1/customers", key).status_code == 200
    pg_proxy.down()  # the server's open connection is reset while nobody is asking anything
    pg_proxy.up()
    for _ in range(5):
        assert server.request("GET", "/v1/customers", key).status_code == 200


def test_database_restart_while_idle_costs_one_503_without_health_checks(start_server, pg_proxy, tenant):
    """The default (no per-request check): the broken connection fails one request with a 503
    envelope, is discarded at the end of it, and the next request reconnects."""
    _, key = tenant
    server = start_server(server_env(pg_port=pg_proxy.port), threads=1)
    assert server.request("GET", "/v1/customers", key).status_code == 200
    pg_proxy.down()
    pg_proxy.up()
    assert_unavailable(server.request("GET", "/v1/customers", key))
    for _ in range(5):
        assert server.request("GET", "/v1/customers", key).status_code == 200
