"""Per-key fixed windows in Redis: headers on every response, 429 + Retry-After, shared counters."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from django.conf import settings
from django.test import override_settings

from tests.platform.helpers import assert_error, assert_rate_headers

ROOT = Path(__file__).resolve().parents[2]


def test_headers_on_a_2xx_read(client):
    response = client.get("/v1/customers")
    assert response.status_code == 200
    assert_rate_headers(response, "read", limit=1000, remaining=999)
    window_end = (int(time.time()) // 60 + 1) * 60
    assert int(response["X-RateLimit-Reset"]) in (window_end, window_end + 60)


def test_headers_on_a_2xx_write(client):
    response = client.post("/v1/customers", {"name": "A"})
    assert response.status_code == 201
    assert_rate_headers(response, "write", limit=200, remaining=199)


def test_headers_on_a_404(client):
    response = client.get("/v1/customers/cus_000000000000000000000000aa")
    assert response.status_code == 404
    assert_rate_headers(response, "read", limit=1000, remaining=999)


def test_headers_on_a_400(client):
    response = client.post("/v1/customers", {})
    assert response.status_code == 400
    assert_rate_headers(response, "write", limit=200, remaining=199)


BAD_KEY = "Bearer pk_live_" + "x" * 40


def test_a_failed_key_counts_against_the_anonymous_bucket(anon_client, db):
    first = anon_client.get("/v1/customers", HTTP_AUTHORIZATION=BAD_KEY)
    second = anon_client.get("/v1/customers", HTTP_AUTHORIZATION=BAD_KEY)
    assert first.status_code == second.status_code == 401
    assert_rate_headers(first, "anonymous", limit=60, remaining=59)
    assert_rate_headers(second, "anonymous", limit=60, remaining=58)


def test_anonymous_bucket_is_per_client_address(anon_client, db):
    anon_client.get("/v1/customers", HTTP_AUTHORIZATION=BAD_KEY, REMOTE_ADDR="10.0.0.1")
    response = anon_client.get("/v1/customers", HTTP_AUTHORIZATION=BAD_KEY, REMOTE_ADDR="10.0.0.2")
    assert_rate_headers(response, "anonymous", remaining=59)


@override_settings(PERLY_RATE_LIMITS={**settings.PERLY_RATE_LIMITS, "anonymous": 2})
def test_anonymous_bucket_answers_429_after_its_limit(anon_client, db):
    for _ in range(2):
        assert anon_client.get("/v1/customers", HTTP_AUTHORIZATION=BAD_KEY).status_code == 401
    response = anon_client.get("/v1/customers", HTTP_AUTHORIZATION=BAD_KEY)
    assert_error(response, 429, "rate_limit_error", "rate_limit_exceeded", param=None)
    assert 1 <= int(response["Retry-After"]) <= 60
    assert_rate_headers(response, "anonymous", limit=2, remaining=0)


def test_429_after_the_key_limit_with_retry_after(workspace, make_client):
    client = make_client(workspace, rate_limit_read=3)
    remaining = [client.get("/v1/customers")["X-RateLimit-Remaining"] for _ in range(3)]
    assert remaining == ["2", "1", "0"]
    response = client.get("/v1/customers")
    retry_after = int(response["Retry-After"])
    assert 1 <= retry_after <= 60
    assert_error(
        response,
        429,
        "rate_limit_error",
        "rate_limit_exceeded",
        f"Rate limit exceeded for the read bucket (3 per minute). Retry after {retry_after} seconds.",
        param=None,
    )
    assert_rate_headers(response, "read", limit=3, remaining=0)
    assert abs(int(response["X-RateLimit-Reset"]) - time.time() - retry_after) <= 2


def test_read_and_write_buckets_are_separate(workspace, make_client):
    client = make_client(workspace, rate_limit_write=1)
    assert client.post("/v1/customers", {"name": "A"}).status_code == 201
    response = client.post("/v1/customers", {"name": "B"})
    assert_error(response, 429, "rate_limit_error", "rate_limit_exceeded")
    assert_rate_headers(response, "write", limit=1, remaining=0)
    assert client.get("/v1/customers").status_code == 200


def test_limits_are_per_key(workspace, make_client):
    limited = make_client(workspace, rate_limit_read=1)
    other = make_client(workspace)
    assert limited.get("/v1/customers").status_code == 200
    assert limited.get("/v1/customers").status_code == 429
    response = other.get("/v1/customers")
    assert response.status_code == 200
    assert_rate_headers(response, "read", limit=1000, remaining=999)


@override_settings(PERLY_RATE_LIMITS={**settings.PERLY_RATE_LIMITS, "read": 4})
def test_default_limits_come_from_settings(client):
    assert_rate_headers(client.get("/v1/customers"), "read", limit=4, remaining=3)


def test_a_rejected_request_does_not_run(workspace, make_client):
    client = make_client(workspace, rate_limit_write=1)
    client.post("/v1/customers", {"name": "A"})
    client.post("/v1/customers", {"name": "B"})
    names = [c["name"] for c in client.get("/v1/customers").json()["data"]]
    assert names == ["A"]


def test_two_processes_share_one_counter(workspace, make_client):
    """Another process (another gunicorn worker, say) spends from the same key's bucket."""
    from perly.ratelimit import WINDOW_SECONDS

    # Every request below must fall in one fixed window: starting the other process takes a few
    # seconds, so begin early in a window rather than across its end (a new window starts full).
    deadline = time.monotonic() + WINDOW_SECONDS
    while time.time() % WINDOW_SECONDS > WINDOW_SECONDS - 20 and time.monotonic() < deadline:
        time.sleep(0.2)
    client = make_client(workspace, rate_limit_read=5)
    assert client.get("/v1/customers")["X-RateLimit-Remaining"] == "4"
    script = (
        "import django; django.setup()\n"
        "from perly.ratelimit import consume\n"
        f"states = [consume({client.api_key.id!r}, 'read', 5) for _ in range(3)]\n"
        "print(','.join(str(s.remaining) for s in states))\n"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "REDIS_URL": settings.REDIS_URL}
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "3,2,1"
    assert client.get("/v1/customers")["X-RateLimit-Remaining"] == "0"
    assert client.get("/v1/customers").status_code == 429
