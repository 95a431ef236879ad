"""Assertions on the error envelope shared by the platform and customers tests."""

from __future__ import annotations

_UNSET = object()


def assert_error(
    response,
    status: int,
    type_: str,
    code: str,
    message: str | None = None,
    param: object = _UNSET,
    errors: object = _UNSET,
) -> dict:
    """Check the whole envelope; returns the inner error for further checks."""
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) == {"error"}
    error = body["error"]
    assert error["type"] == type_
    assert error["code"] == code
    assert error["request_id"] == response["Request-Id"]
    assert error["request_id"].startswith("req_")
    assert isinstance(error["message"], str) and error["message"]
    if message is not None:
        assert error["message"] == message
    if param is not _UNSET:
        assert error["param"] == param
    if errors is not _UNSET:
        assert error.get("errors") == errors
    allowed = {"type", "code", "message", "param", "request_id", "errors"}
    assert set(error) <= allowed and {"type", "code", "message", "param", "request_id"} <= set(error)
    return error


def assert_rate_headers(response, resource: str, limit: int | None = None, remaining: int | None = None):
    assert response["X-RateLimit-Resource"] == resource
    assert int(response["X-RateLimit-Reset"]) > 0
    if limit is not None:
        assert response["X-RateLimit-Limit"] == str(limit)
    if remaining is not None:
        assert response["X-RateLimit-Remaining"] == str(remaining)


def start_early_in_a_window(margin: float = 10.0) -> None:
    """Wait, if need be, until at least `margin` seconds are left of the current one-minute
    rate-limit window, so a test that spends a bucket and then checks it sees one window."""
    import time

    from perly.ratelimit import WINDOW_SECONDS
    from tests.support.worker import wait_for

    wait_for(
        lambda: WINDOW_SECONDS - time.time() % WINDOW_SECONDS > margin,
        timeout=margin + 5,
        message="the next rate-limit window",
    )
