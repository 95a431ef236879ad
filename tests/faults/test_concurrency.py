"""Eight concurrent clients against a real server (2 gunicorn workers x 8 threads): nothing is
stored twice, no metadata key is lost, and no rate-limit window lets more than its limit through."""

from __future__ import annotations

import threading
from collections import Counter, defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from customers.models import Customer
from events.models import Event
from perly.apikeys import api_key_create
from tests.faults.conftest import server_env

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]
THREADS = 8


@pytest.fixture
def server(start_server):
    return start_server(server_env(), workers=2, threads=8)


def run_concurrently(job: Callable[[int, requests.Session], list]) -> list:
    """job(thread_index, session) in 8 threads released together; the results, concatenated."""
    barrier = threading.Barrier(THREADS)

    def run(index: int) -> list:
        with requests.Session() as session:
            barrier.wait(timeout=30)
            return job(index, session)

    with ThreadPoolExecutor(THREADS) as pool:
        return [item for result in pool.map(run, range(THREADS)) for item in result]


def call(server, session, method, path, key, **kwargs) -> requests.Response:
    return session.request(
        method,
        server.url(path),
        headers={"Authorization": f"Bearer {key}", **kwargs.pop("headers", {})},
        timeout=30,
        **kwargs,
    )


def test_overlapping_batches_with_shared_keys_store_each_event_once(server, tenant):
    _, key = tenant
    customer = server.request("POST", "/v1/customers", key, json={"name": "Initech"}).json()["id"]
    keys = [f"evt-key-{n}" for n in range(120)]

    def job(index: int, session) -> list:
        results = []
        for round_ in range(3):
            # Windows of 60 keys that overlap their neighbours' by half; odd threads 1 and 5 (and 3
            # and 7) send the very same batch under the same Idempotency-Key header.
            start = ((index % 4) * 30 + round_ * 20) % len(keys)
            window = [keys[(start + j) % len(keys)] for j in range(60)]
            batch = {
                "events": [{"customer_id": customer, "type": "login", "idempotency_key": k} for k in window]
            }
            headers = {"Idempotency-Key": f"batch-{index % 4}-{round_}"} if index % 2 else {}
            response = call(server, session, "POST", "/v1/events", key, json=batch, headers=headers)
            results.append((response.status_code, response.json(), window, headers))
        return results

    results = run_concurrently(job)
    statuses = Counter(status for status, *_ in results)
    # 409 idempotency_key_in_use is the documented answer for a twin still running.
    assert set(statuses) <= {200, 409}, statuses
    for status, body, _, _ in results:
        if status == 409:
            assert body["error"]["code"] == "idempotency_key_in_use"
    sent_keys = {k for status, _, window, _ in results if status == 200 for k in window}
    stored = list(Event.objects.filter(customer_id=customer).values_list("idempotency_key", flat=True))
    assert sorted(stored) == sorted(sent_keys)  # every key once: nothing lost, nothing twice
    # The replies add up: each request's first-time answer counts each key accepted exactly once.
    first_answers = {}
    for status, body, _, headers in results:
        if status == 200:
            first_answers.setdefault(headers.get("Idempotency-Key") or id(body), body)
    assert sum(body["accepted"] for body in first_answers.values()) == len(stored)


def test_concurrent_patches_lose_no_metadata_key(server, tenant):
    _, key = tenant
    customer = server.request("POST", "/v1/customers", key, json={"name": "Initech"}).json()["id"]

    def job(index: int, session) -> list:
        return [
            call(
                server,
                session,
                "PATCH",
                f"/v1/customers/{customer}",
                key,
                json={"metadata": {f"t{index}_{n}": str(n)}},
            ).status_code
            for n in range(5)
        ]

    assert set(run_concurrently(job)) == {200}
    metadata = Customer.objects.get(pk=customer).metadata
    assert metadata == {f"t{i}_{n}": str(n) for i in range(THREADS) for n in range(5)}


def allowed_per_window(responses: list[tuple[int, str, int]]) -> dict[str, int]:
    """Units let through in each rate-limit window (identified by X-RateLimit-Reset)."""
    windows: dict[str, int] = defaultdict(int)
    for status, reset, units in responses:
        assert status in (200, 201, 429), status
        if status != 429:
            windows[reset] += units
    return dict(windows)


def test_write_limit_is_exact_under_eight_concurrent_clients(server, tenant):
    workspace, _ = tenant
    _, key = api_key_create(workspace=workspace, rate_limit_write=25)

    def job(index: int, session) -> list:
        out = []
        for n in range(8):
            response = call(server, session, "POST", "/v1/customers", key, json={"name": f"C{index}-{n}"})
            out.append((response.status_code, response.headers["X-RateLimit-Reset"], 1))
        return out

    responses = run_concurrently(job)
    windows = allowed_per_window(responses)
    assert all(allowed <= 25 for allowed in windows.values()), windows
    assert sum(windows.values()) >= 25  # not stingy either: the whole allowance was usable
    assert Customer.objects.count() == sum(windows.values())  # a refused request stored nothing


def test_events_limit_is_exact_under_eight_concurrent_clients(server, tenant):
    workspace, _ = tenant
    _, key = api_key_create(workspace=workspace, rate_limit_events=200)
    customer = server.request("POST", "/v1/customers", key, json={"name": "Initech"}).json()["id"]

    def job(index: int, session) -> list:
        out = []
        for _ in range(4):
            batch = {"events": [{"customer_id": customer, "type": "login"} for _ in range(30)]}
            response = call(server, session, "POST", "/v1/events", key, json=batch)
            accepted = response.json()["accepted"] if response.status_code == 200 else 0
            out.append((response.status_code, response.headers["X-RateLimit-Reset"], accepted))
        return out

    windows = allowed_per_window(run_concurrently(job))
    assert all(allowed <= 200 for allowed in windows.values()), windows
    assert sum(windows.values()) >= 180  # six batches of 30 fit in 200; a seventh does not
    assert Event.objects.filter(customer_id=customer).count() == sum(windows.values())
