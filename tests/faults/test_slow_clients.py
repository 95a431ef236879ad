"""Slow clients against gunicorn as configured by the repository's gunicorn.conf.py: they must not
stall `/healthz` or get workers killed, and each is cut off after the bounded request read."""

from __future__ import annotations

import json
import time

import psutil
import pytest
import requests

from tests.faults.conftest import server_env
from tests.support.rawhttp import open_slow, parse_answer, read_answer

pytestmark = pytest.mark.django_db(transaction=True)

READ_TIMEOUT = 4  # PERLY_REQUEST_READ_TIMEOUT for this server (15 s by default)


def worker_pids(server) -> set[int]:
    return {child.pid for child in psutil.Process(server.process.pid).children()}


def test_slow_clients_do_not_stall_healthz(start_server, tenant):
    _, secret = tenant
    server = start_server(server_env(PERLY_REQUEST_READ_TIMEOUT=str(READ_TIMEOUT)), shipped_config=True)
    workers = worker_pids(server)
    assert len(workers) == 2  # the shipped config's process count (WEB_CONCURRENCY unset)

    post = (
        "POST /v1/customers HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {secret}\r\nContent-Length: 1000\r\n\r\n"
    ).encode()
    admin_login = (
        b"POST /admin/login/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n"
        # Any well-formed CSRF cookie: without one the check refuses before reading the body.
        b"Cookie: csrftoken=" + b"a" * 32 + b"\r\n\r\n"
    )
    started = time.monotonic()
    slow = [
        # The review's attack: Content-Length 1000 and one byte, on an authenticated body...
        open_slow(server.port, post, b"{"),
        open_slow(server.port, post, b"{"),
        # ...on a form the CSRF check reads without any key...
        open_slow(server.port, admin_login, b"u"),
        open_slow(server.port, admin_login, b"u"),
        # ...and headers that never end.
        open_slow(server.port, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n"),
        open_slow(server.port, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n"),
    ]
    try:
        # While they hang, a prompt client is answered at once, again and again.
        probes = 0
        while time.monotonic() < started + READ_TIMEOUT - 1.5:
            began = time.monotonic()
            response = requests.get(server.url("/healthz"), timeout=2)
            assert response.status_code == 200
            assert time.monotonic() - began < 2
            probes += 1
            time.sleep(0.2)
        assert probes >= 3

        # Each slow request is cut off after the read deadline, with the envelope's 408.
        for sock in slow:
            answer = parse_answer(read_answer(sock, deadline=started + READ_TIMEOUT + 5))
            assert answer.status == 408
            assert answer.getheader("Content-Type") == "application/json"
            error = json.loads(answer.read())["error"]
            assert error["code"] == "request_timeout"
            assert error["type"] == "invalid_request_error"
            assert error["request_id"].startswith("req_")
            sock.close()
        assert time.monotonic() - started >= READ_TIMEOUT - 0.5  # not cut off early
    finally:
        for sock in slow:
            sock.close()

    # No worker was killed or restarted, and the server still answers.
    assert worker_pids(server) == workers
    assert requests.get(server.url("/healthz"), timeout=2).status_code == 200
    assert "Traceback" not in server.logs()


def test_peers_that_never_close_do_not_stall_the_server(start_server, tenant):
    """After a `Connection: close` answer the server lingers for the peer to close; a peer that
    never does must cost at most a thread for that while, never the process's event loop."""
    server = start_server(server_env(), shipped_config=True)
    request = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    sent = time.monotonic()
    lingering = [open_slow(server.port, request) for _ in range(6)]
    try:
        # Each answer ends (the server's FIN) promptly, though none of these peers closes: a
        # process whose event loop lingered on one would hold the others' ends 2 s apiece.
        for sock in lingering:
            assert parse_answer(read_answer(sock, deadline=sent + 2)).status == 200
        for _ in range(5):
            began = time.monotonic()
            assert requests.get(server.url("/healthz"), timeout=2).status_code == 200
            assert time.monotonic() - began < 2
    finally:
        for sock in lingering:
            sock.close()
