"""Redis unavailable: a real server keeps serving, fails open on rate limits, and says so."""

from __future__ import annotations

import time

import pytest

from customers.models import Customer
from events.models import Event
from health.models import DirtyCustomer
from health.services import rescore_dirty_drain
from tests.faults.conftest import server_env
from tests.support.worker import wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]


@pytest.fixture
def server(start_server, redis_proxy):
    return start_server(server_env(redis_port=redis_proxy.port))


def test_api_serves_reads_and_writes_while_redis_is_down(server, redis_proxy, tenant):
    workspace, key = tenant
    assert server.request("GET", "/readyz").status_code == 200
    redis_proxy.down()

    created = server.request("POST", "/v1/customers", key, json={"name": "Initech", "metadata": {"a": "1"}})
    assert created.status_code == 201, created.text
    customer_id = created.json()["id"]
    listed = server.request("GET", "/v1/customers", key)
    assert listed.status_code == 200
    assert [c["id"] for c in listed.json()["data"]] == [customer_id]
    # Fail open: the request is allowed and the headers still describe the (uncounted) window.
    assert listed.headers["X-RateLimit-Resource"] == "read"
    assert listed.headers["X-RateLimit-Remaining"] == listed.headers["X-RateLimit-Limit"] == "1000"

    patched = server.request("PATCH", f"/v1/customers/{customer_id}", key, json={"metadata": {"b": "2"}})
    assert patched.status_code == 200, patched.text
    assert patched.json()["metadata"] == {"a": "1", "b": "2"}
    # The retrieve's response cache shares the limiter's round trip: it fails open to the database.
    retrieved = server.request("GET", f"/v1/customers/{customer_id}", key)
    assert retrieved.status_code == 200, retrieved.text
    assert retrieved.json()["metadata"] == {"a": "1", "b": "2"}
    assert server.request("GET", f"/v1/customers/{customer_id}/health", key).status_code == 200

    doomed = server.request("POST", "/v1/customers", key, json={"name": "Doomed"}).json()["id"]
    deleted = server.request("DELETE", f"/v1/customers/{doomed}", key)
    # The purge task cannot be queued; the periodic purge catches up once the broker is back.
    assert deleted.status_code == 200, deleted.text
    assert deleted.json() == {"id": doomed, "object": "customer", "deleted": True}
    assert Customer.all_objects.get(pk=doomed).deleted_at is not None

    assert "rate limiter unavailable, allowing request" in server.logs()


def test_ingestion_stores_and_marks_dirty_in_the_database(server, redis_proxy, tenant):
    workspace, key = tenant
    customer_id = server.request("POST", "/v1/customers", key, json={"name": "Initech"}).json()["id"]
    redis_proxy.down()

    batch = {"events": [{"customer_id": customer_id, "type": "login", "idempotency_key": "e1"}]}
    first = server.request("POST", "/v1/events", key, json=batch, headers={"Idempotency-Key": "batch-1"})
    assert first.status_code == 200, first.text
    assert first.json() == {"object": "event_batch", "accepted": 1, "duplicates": 0, "rejected": []}
    assert first.headers["X-RateLimit-Resource"] == "events"
    # Idempotency records live in PostgreSQL: the replay works without Redis.
    replay = server.request("POST", "/v1/events", key, json=batch, headers={"Idempotency-Key": "batch-1"})
    assert (replay.status_code, replay.headers.get("Idempotent-Replayed")) == (200, "true")
    assert replay.json() == first.json()

    assert Event.objects.filter(workspace_id=workspace.id, customer_id=customer_id).count() == 1
    assert list(DirtyCustomer.objects.values_list("customer_id", flat=True)) == [customer_id]
    assert "Redis unavailable for dirty marks, using the database" in server.logs()

    redis_proxy.up()
    # What beat's health.rescore_dirty runs: the database marks are drained like Redis ones.
    assert rescore_dirty_drain() == 1
    assert not DirtyCustomer.objects.exists()
    health = server.request("GET", f"/v1/customers/{customer_id}/health", key).json()
    assert health["score"] is not None


def test_anonymous_bucket_and_key_errors_do_not_500(server, redis_proxy, tenant):
    redis_proxy.down()
    # django-ratelimit's per-address bucket lives in the Django cache (Redis): it fails open.
    missing = server.request("GET", "/v1/customers")
    assert missing.status_code == 401
    assert missing.json()["error"]["code"] == "invalid_api_key"
    assert missing.headers["X-RateLimit-Resource"] == "anonymous"
    wrong = server.request("GET", "/v1/customers", "pk_live_" + "x" * 40)
    assert wrong.status_code == 401
    assert server.request("GET", "/v1/openapi.json").status_code == 200
    assert "anonymous rate limiter unavailable" in server.logs()


def test_readyz_reports_the_degradation_and_the_fail_open_metric(server, redis_proxy, tenant):
    _, key = tenant
    redis_proxy.down()
    assert server.request("GET", "/v1/customers", key).status_code == 200

    ready = server.request("GET", "/readyz")
    assert ready.status_code == 503
    body = ready.json()
    assert body["status"] == "degraded"
    assert body["checks"] == {"database": "ok", "redis": "unavailable"}
    assert body["metrics"]["ratelimit_fail_open_total"] >= 1

    redis_proxy.up()
    wait_for(lambda: server.request("GET", "/readyz").status_code == 200, timeout=20, message="readyz 200")
    assert server.request("GET", "/readyz").json()["checks"] == {"database": "ok", "redis": "ok"}


def test_a_black_holed_redis_slows_requests_but_never_hangs_them(server, redis_proxy, tenant):
    """A partition (packets dropped, no reset) is worse than a crash: every call waits for its
    timeout. The socket timeouts (cache, rate limiter, broker) bound it: requests still answer."""
    _, key = tenant
    customer_id = server.request("POST", "/v1/customers", key, json={"name": "Initech"}).json()["id"]
    redis_proxy.pause()
    for method, path, body in [
        ("GET", "/v1/customers", None),
        ("PATCH", f"/v1/customers/{customer_id}", {"metadata": {"k": "v"}}),
        ("POST", "/v1/events", {"events": [{"customer_id": customer_id, "type": "login"}]}),
    ]:
        started = time.monotonic()
        response = server.request(method, path, key, json=body)
        elapsed = time.monotonic() - started
        assert response.status_code == 200, (path, response.text)
        # Measured: ~0.5 s for reads and writes, several seconds for ingestion (it also queues a task).
        assert elapsed < 15, f"{method} {path} took {elapsed:.1f}s with Redis black-holed"
    assert server.request("GET", "/readyz", timeout=10).status_code == 503
