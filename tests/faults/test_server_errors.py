"""Every answer from the API's address is the JSON error envelope, including the ones gunicorn
gives before the app sees the request (an over-long request line, too many or too large
headers, a malformed request) and the app's own request limits and Host check."""

from __future__ import annotations

import json

import pytest

from tests.faults.conftest import server_env
from tests.support.rawhttp import exchange

pytestmark = pytest.mark.django_db(transaction=True)

PATHS = ["/v1/events", "/v1/health/at-risk", "/v1/customers", "/healthz", "/admin/"]


def request(path: str, *headers: str, host: str = "127.0.0.1") -> bytes:
    lines = [f"GET {path} HTTP/1.1", f"Host: {host}", "Connection: close", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def assert_envelope(answer, status: int, code: str, param: object = None) -> dict:
    body = answer.read()
    assert answer.status == status, body
    assert answer.getheader("Content-Type") == "application/json", body
    error = json.loads(body)["error"]
    assert error["code"] == code
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    assert error["message"]
    assert error["request_id"].startswith("req_")
    assert answer.getheader("Request-Id") == error["request_id"]
    return error


def test_every_refusal_is_the_json_envelope(start_server, tenant):
    _, secret = tenant
    server = start_server(server_env(), shipped_config=True)
    auth = f"Authorization: Bearer {secret}"
    for path in PATHS:
        # Past gunicorn's request line limit (8,190 bytes): gunicorn answers, in the envelope.
        answer = exchange(server.port, request(f"{path}?q={'a' * 9000}", auth))
        assert_envelope(answer, 414, "uri_too_long")
        # Past the app's query limit (4,096 bytes) but within gunicorn's: the app answers.
        answer = exchange(server.port, request(f"{path}?q={'a' * 5000}", auth))
        assert_envelope(answer, 414, "uri_too_long")
        # Past the app's parameter count (100), within its byte limit.
        many = "&".join(f"p{i}=1" for i in range(101))
        answer = exchange(server.port, request(f"{path}?{many}", auth))
        assert_envelope(answer, 400, "parameter_invalid")
        # More than 100 header fields, and one field over 8,190 bytes.
        answer = exchange(server.port, request(path, auth, *(f"X-Pad-{i}: 1" for i in range(101))))
        assert_envelope(answer, 431, "headers_too_large")
        answer = exchange(server.port, request(path, auth, f"X-Pad: {'a' * 9000}"))
        assert_envelope(answer, 431, "headers_too_large")
        # A Host outside ALLOWED_HOSTS, with and without a valid key.
        for headers in ([auth], []):
            answer = exchange(server.port, request(path, *headers, host="evil.example"))
            assert_envelope(answer, 400, "parameter_invalid", param="Host")
    # A request gunicorn cannot parse at all.
    answer = exchange(server.port, b"GARBAGE\r\n\r\n")
    assert_envelope(answer, 400, "request_malformed")
    answer = exchange(server.port, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nBad Header\r\n\r\n")
    assert_envelope(answer, 400, "request_malformed")
    # Within every limit, the same server answers normally.
    answer = exchange(server.port, request("/v1/customers?limit=1", auth))
    assert answer.status == 200
