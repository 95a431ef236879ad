"""What `make run` and `make test` stand on: the embedded servers, and no silent fallback.

The whole `make run` path (a venv from requirements.txt alone, the demo, a webhook retried by the
worker, nothing left running after SIGTERM) is proven by .ci/run through scripts/ci_newcomer.py.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest
import redis

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

from embedded import EmbeddedPostgres, EmbeddedRedis, free_port  # noqa: E402


def _closed_port() -> int:
    port = free_port()  # nothing listens there once the probe socket is closed
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", port)) != 0
    return port


@pytest.mark.parametrize("variable", ["TEST_DATABASE_URL", "TEST_REDIS_URL"])
def test_make_test_stops_at_once_when_a_named_server_is_unreachable(variable, tmp_path):
    port = _closed_port()
    url = (
        f"postgres://postgres@127.0.0.1:{port}/perly"
        if "DATABASE" in variable
        else f"redis://127.0.0.1:{port}/0"
    )
    env = {key: value for key, value in os.environ.items() if not key.startswith("TEST_")}
    env[variable] = url
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "devstack.py"), "test", "--", "--collect-only"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert f"{variable} {url}" in result.stderr
    assert "nothing falls back silently" in result.stderr
    assert "started at" not in result.stdout  # no embedded server was started in its place
    assert time.monotonic() - started < 20


def test_embedded_redis_serves_on_a_free_port_and_stops(tmp_path):
    server = EmbeddedRedis(tmp_path / "redis", persist=False)
    url = server.start()
    try:
        assert server.port not in (6379, None)
        client = redis.Redis.from_url(url)
        # The rate limiter and the response cache run Lua: the embedded server must too.
        assert client.eval("return redis.call('INCRBY', KEYS[1], ARGV[1])", 1, "k", 3) == 3
    finally:
        server.stop()
    assert server.process.poll() is not None
    with pytest.raises(redis.ConnectionError):
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()


def test_embedded_postgres_keeps_its_data_across_restarts(tmp_path):
    server = EmbeddedPostgres(tmp_path / "pg", database="perly_embedded_check", durable=False)
    url = server.start()
    try:
        assert server.port not in (5432, None)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE TABLE kept (value text)")
            conn.execute("INSERT INTO kept VALUES ('still here')")
        server.stop()
        assert server.pid() is None
        url = server.start()  # the same data, on a new free port
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT value FROM kept").fetchone() == ("still here",)
            assert conn.execute("SHOW server_version_num").fetchone()[0] >= "180000"
    finally:
        server.stop()
    assert server.pid() is None
