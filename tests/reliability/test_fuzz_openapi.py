"""Schemathesis fuzzes every operation of /v1/openapi.json in-process, with a real key.

Each operation gets a bounded budget (MAX_EXAMPLES generated cases plus schemathesis' boundary
"coverage" cases). Half of the cases that take an object id use a real one from the seeded
workspace, so the happy paths are fuzzed too, not only the 404s.

Checks: no 5xx; status code, content type, headers and body conform to the spec; schema-invalid
input is rejected with a 4xx; undeclared methods get 405; auth is enforced; and every error
carries the conventions' envelope with the response's request id.
"""

from __future__ import annotations

import re
import uuid
import zlib

import pytest
import schemathesis
from django.conf import settings as django_settings
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from django.test import override_settings
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
)

from perly.errors import ERROR_TYPES, error_type
from tests.reliability.conftest import seed_workspace

MAX_EXAMPLES = 25
# Werkzeug's test environ has no client address; a real server always sets one.
ENVIRON = {"REMOTE_ADDR": "203.0.113.7"}
PATH_PARAM = re.compile(r"([^/{}]+)/\{([^}]+)\}")

# A query string over 4,096 bytes is refused with 414 uri_too_long before any parameter is read
# (README, "Hostile input"): as much a rejection of invalid data as a 400. The fuzz builds such
# queries now and then (a parameter repeated as a long array), so 414 joins the statuses the
# negative_data_rejection check accepts, for every operation.
_REJECTED = SchemathesisConfig().projects.get_default().checks.negative_data_rejection.expected_statuses
CONFIG = SchemathesisConfig.from_dict(
    {"checks": {"negative_data_rejection": {"expected-statuses": [*_REJECTED, "414"]}}}
)
schema = schemathesis.openapi.from_wsgi(
    "/v1/openapi.json", get_wsgi_application(), config=CONFIG, environ_base=ENVIRON
)


def error_envelope(ctx, response, case):
    """Every non-2xx response is the conventions' envelope, typed by status, with its request id."""
    if response.status_code < 400:
        return None
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert (
        {"type", "code", "message", "param", "request_id"}
        <= set(error)
        <= {
            "type",
            "code",
            "message",
            "param",
            "request_id",
            "errors",
        }
    ), error
    assert error["type"] == error_type(response.status_code), (response.status_code, error)
    assert response.status_code in ERROR_TYPES or response.status_code >= 500, response.status_code
    if response.headers.get("idempotent-replayed") == ["true"]:
        # A replay is the first response, body and all, so it names the first request's id.
        assert error["request_id"].startswith("req_"), error
    else:
        assert error["request_id"] == response.headers["request-id"][0], error
    assert isinstance(error["code"], str) and error["code"], error
    assert isinstance(error["message"], str) and error["message"], error
    return None


def batch_accounts_for_every_event(ctx, response, case):
    """POST /v1/events takes a batch whose invalid events are refused one by one, with a 200
    listing them under `rejected` (the batch as a whole is a 400 only when its shape is wrong).
    So instead of "schema-invalid means 4xx", every event sent is accounted for exactly once."""
    if case.operation.label != "POST /v1/events" or response.status_code != 200:
        return None
    body = response.json()
    sent = len(case.body["events"])
    assert body["accepted"] + body["duplicates"] + len(body["rejected"]) == sent, (sent, body)
    assert sorted(r["index"] for r in body["rejected"]) == sorted({r["index"] for r in body["rejected"]})
    return None


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
    unsupported_method,
    ignored_auth,
    error_envelope,
    batch_accounts_for_every_event,
]
# See batch_accounts_for_every_event: per-event refusals are a 200 by design.
CHECKS_FOR = {"POST /v1/events": [c for c in CHECKS if c is not negative_data_rejection]}


@pytest.fixture
def fuzz_key(workspace, make_client, offline_dns, fake_providers):
    api = make_client(
        workspace, rate_limit_read=100_000, rate_limit_write=100_000, rate_limit_events=1_000_000
    )
    real_ids = seed_workspace(api).by_segment()
    # A real WSGI request closes "old" connections when it starts and ends, which inside the
    # test's transaction would close the test's own connection. Django's test client detaches
    # the same hooks (and re-attaches them after each of its requests, so detach after seeding).
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    # The ignored_auth check resends cases with bad credentials, all from one address: the
    # anonymous bucket (which throttles key guessing) would answer 429 after 60 of them.
    limits = {**django_settings.PERLY_RATE_LIMITS, "anonymous": 100_000}
    with override_settings(PERLY_RATE_LIMITS=limits):
        yield api.secret, real_ids
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


def use_real_ids(case, real_ids: dict[str, str]) -> None:
    """For about half the cases (decided by the generated values, so a failure replays), put
    the seeded object's id in every id path parameter."""
    generated = repr((sorted(case.path_parameters.items()), case.query, case.body)).encode()
    if not case.path_parameters or zlib.crc32(generated) % 2:
        return
    for segment, name in PATH_PARAM.findall(case.operation.path):
        if segment in real_ids and name in case.path_parameters:
            case.path_parameters[name] = real_ids[segment]


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
def test_every_operation_conforms_to_the_spec(case, fuzz_key):
    secret, real_ids = fuzz_key
    use_real_ids(case, real_ids)
    if case.headers and "Idempotency-Key" in case.headers:
        # Generated keys repeat ("0") across different bodies, which is rightly a 400 every time
        # after the first; a fresh key per case still exercises the idempotent path.
        case.headers["Idempotency-Key"] = uuid.uuid4().hex
    checks = CHECKS_FOR.get(case.operation.label, CHECKS)
    if _headers_were_generated_invalid(case):
        # The harness replaces the headers an operation declares (Authorization, Idempotency-Key),
        # so a case made invalid through them reaches the API as a valid request: expecting a
        # 4xx for it would fail on a request the API rightly accepts.
        checks = [check for check in checks if check is not negative_data_rejection]
    case.call_and_validate(headers={"Authorization": f"Bearer {secret}"}, checks=checks, environ_base=ENVIRON)


def _headers_were_generated_invalid(case) -> bool:
    components = case.meta.components if case.meta else {}
    return any(
        str(getattr(location, "value", location)) == "header" and info.mode == GenerationMode.NEGATIVE
        for location, info in components.items()
    )
