"""Hostile input: every request below gets a 400 or 413 in the error envelope (or the 404 a
malformed id always gets), never a 500, and the process keeps serving afterwards."""

from __future__ import annotations

import json

import pytest
from django.test import override_settings

from customers.models import Customer
from events.models import Event
from tests.platform.helpers import assert_error
from tests.reliability.conftest import WEBHOOK_URL
from tests.webhooks.receiver import Receiver

DEEP = 1_000


@pytest.fixture(autouse=True)
def _still_healthy(client):
    """After each hostile request the same process answers a normal one."""
    yield
    response = client.get("/v1/customers")
    assert response.status_code == 200, response.content


def post_raw(client, path: str, raw: bytes, **headers):
    return client.generic("POST", path, raw, content_type="application/json", **headers)


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize(
    ("path", "template"),
    [
        ("/v1/customers", '{"name": "Deep", "metadata": {"k": %s}}'),
        ("/v1/events", '{"events": [{"customer_external_id": "x", "type": "t", "properties": {"p": %s}}]}'),
        ("/v1/webhooks", '{"url": "https://hooks.example.com", "events": ["*"], "description": %s}'),
        ("/v1/customers", "%s"),
    ],
)
@pytest.mark.parametrize("depth", [DEEP, 100_000])
def test_deeply_nested_json_is_refused_whole(client, path, template, depth):
    if path == "/v1/events" and depth == DEEP:
        pytest.skip("ingestion refuses the one deep event: test_events_refuse_only_the_hostile_event")
    response = post_raw(client, path, (template % nested(depth)).encode())
    error = assert_error(response, 400, "invalid_request_error", response.json()["error"]["code"])
    assert error["code"] in ("invalid_json", "parameter_invalid")
    assert "deep" in error["message"] or "depth" in error["message"]
    assert not Customer.objects.filter(name="Deep").exists()


@pytest.mark.parametrize(
    "number", ["1e400", "-1e400", "1" * 400, "-" + "9" * 400, "NaN", "Infinity", "-Infinity"]
)
@pytest.mark.parametrize(
    "template",
    [
        '{"name": "Num", "metadata": {"k": %s}}',
        '{"events": [{"customer_external_id": "x", "type": "t", "properties": {"n": %s}}]}',
        '{"thresholds": {"healthy": %s}}',
    ],
)
def test_huge_numbers_nan_and_infinity_are_invalid_json(client, number, template):
    path = "/v1/health/model" if "thresholds" in template else template and _path_for(template)
    method = "PUT" if "thresholds" in template else "POST"
    response = client.generic(method, path, (template % number).encode(), content_type="application/json")
    error = assert_error(response, 400, "invalid_request_error", "invalid_json")
    assert error["message"].startswith("The request body is not valid JSON")


def _path_for(template: str) -> str:
    return "/v1/events" if '"events"' in template else "/v1/customers"


@pytest.mark.parametrize(
    "raw",
    [
        b'{"name": "\xff\xfe"}',
        b'{"name": "\xed\xa0\x80"}',
        b'{"name": "ok", "\xc3\x28": "x"}',
        b"\xef\xbb\xbf{}",
    ],
)
def test_invalid_utf8_is_invalid_json(client, raw):
    response = post_raw(client, "/v1/customers", raw)
    assert_error(response, 400, "invalid_request_error", "invalid_json")
    assert Customer.objects.count() == 0


NUL = "a\u0000b"
NUL_BODIES = [
    ("POST", "/v1/customers", {"name": NUL}, "name"),
    ("POST", "/v1/customers", {"name": "N", "email": "a\u0000@b.com"}, "email"),
    ("POST", "/v1/customers", {"name": "N", "external_id": NUL}, "external_id"),
    ("POST", "/v1/customers", {"name": "N", "domain": NUL}, "domain"),
    ("POST", "/v1/customers", {"name": "N", "plan": NUL}, "plan"),
    ("POST", "/v1/customers", {"name": "N", "metadata": {"k": NUL}}, "metadata[k]"),
    ("POST", "/v1/customers", {"name": "N", "metadata": {NUL: "v"}}, "metadata"),
    ("POST", "/v1/webhooks", {"url": WEBHOOK_URL, "events": ["*"], "description": NUL}, "description"),
    ("POST", "/v1/webhooks", {"url": WEBHOOK_URL + "/\u0000", "events": ["*"]}, "url"),
    ("POST", "/v1/webhooks", {"url": WEBHOOK_URL, "events": [NUL]}, "events[0]"),
    (
        "POST",
        "/v1/integrations",
        {"provider": "stripe", "credentials": {"api_key": NUL}},
        "credentials[api_key]",
    ),
    ("PUT", "/v1/health/model", {"weights": {NUL: 1}}, "weights"),
]


@pytest.mark.parametrize(("method", "path", "body", "param"), NUL_BODIES, ids=[b[3] for b in NUL_BODIES])
def test_nul_characters_in_any_string_are_a_400(client, offline_dns, method, path, body, param):
    response = client.generic(method, path, json.dumps(body), content_type="application/json")
    error = assert_error(response, 400, "invalid_request_error", "parameter_invalid")
    assert error["param"] == param
    assert "NUL" in error["message"]
    assert Customer.objects.count() == 0 and Event.objects.count() == 0


# Raw JSON (json.loads/dumps would recurse 1,000 levels); CUS stands for the customer's id.
EVENT_HOSTILE = [
    ('{"customer_external_id": "a\\u0000b", "type": "t"}', "customer_external_id"),
    ('{"customer_id": "CUS", "type": "a\\u0000b"}', "type"),
    ('{"customer_id": "CUS", "type": "t", "properties": {"deep": {"v": ["a\\u0000b"]}}}', "properties"),
    ('{"customer_id": "CUS", "type": "t", "properties": {"a\\u0000b": 1}}', "properties"),
    ('{"customer_id": "CUS", "type": "t", "idempotency_key": "a\\u0000b"}', "idempotency_key"),
    ('{"customer_id": "CUS", "type": "t", "properties": {"p": ' + nested(DEEP) + "}}", "properties"),
]


@pytest.mark.parametrize(
    ("event", "param"), EVENT_HOSTILE, ids=[f"{i}-{e[1]}" for i, e in enumerate(EVENT_HOSTILE)]
)
def test_events_refuse_only_the_hostile_event(client, customer, event, param):
    """A batch refuses its invalid events one by one (200 with `rejected`), the rest is stored."""
    good = '{"customer_id": "CUS", "type": "fine"}'
    raw = ('{"events": [' + event + ", " + good + "]}").replace("CUS", customer["id"])
    response = post_raw(client, "/v1/events", raw.encode())
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["accepted"] == 1 and body["duplicates"] == 0
    assert [(r["index"], r["param"]) for r in body["rejected"]] == [(0, param)]
    assert list(Event.objects.values_list("type", flat=True)) == ["fine"]


def test_nul_in_an_update_is_a_400_and_changes_nothing(client, customer):
    response = client.patch(f"/v1/customers/{customer['id']}", {"metadata": {"note": NUL}}, format="json")
    assert_error(response, 400, "invalid_request_error", "parameter_invalid", param="metadata[note]")
    assert Customer.objects.get(pk=customer["id"]).metadata == {}


@pytest.mark.parametrize(
    "query",
    ["q=a%00b", "email=a%00@b.com", "plan=%00", "external_id=x%00", "starting_after=cus_%00"],
)
def test_nul_in_query_parameters_is_a_400(client, query):
    response = client.get(f"/v1/customers?{query}")
    assert_error(response, 400, "invalid_request_error", "parameter_invalid", param=query.split("=")[0])


@pytest.mark.parametrize(
    "path", ["/v1/health/summary?plan=a%00", "/v1/events?type=a%00", "/v1/health/at-risk?starting_after=%00"]
)
def test_nul_in_other_endpoints_query_is_a_400(client, path):
    assert_error(client.get(path), 400, "invalid_request_error", "parameter_invalid")


def test_nul_in_an_idempotency_key_is_a_400(client):
    response = client.post("/v1/customers", {"name": "N"}, format="json", HTTP_IDEMPOTENCY_KEY="k\u0000ey")
    assert_error(response, 400, "invalid_request_error", "parameter_invalid", param="Idempotency-Key")
    assert Customer.objects.count() == 0


@pytest.mark.parametrize(
    ("path", "limit_mib"), [("/v1/customers", 1), ("/v1/events", 4), ("/v1/webhooks", 1)]
)
def test_ten_megabyte_bodies_get_413(client, path, limit_mib):
    raw = b'{"name": "' + b"x" * (10 * 1024 * 1024) + b'"}'
    response = post_raw(client, path, raw)
    assert_error(
        response,
        413,
        "invalid_request_error",
        "request_too_large",
        message=f"The request body exceeds the {limit_mib} MiB limit for this endpoint.",
    )


def test_ten_thousand_query_parameters_get_a_414(client):
    # 68 KB of query: over the byte limit before the count is looked at (test_request_limits.py).
    query = "&".join(f"p{i}=1" for i in range(10_000))
    response = client.get(f"/v1/customers?{query}")
    assert_error(response, 414, "invalid_request_error", "uri_too_long")


def test_ten_thousand_repeats_of_one_parameter_get_a_414(client):
    response = client.get("/v1/events?" + "&".join(["type=login"] * 10_000))
    assert_error(response, 414, "invalid_request_error", "uri_too_long")


LOOKALIKES = [
    "\u0441us_00mwxf6u0eqn7thevup28lnaq8",  # Cyrillic es
    "cus_００mwxf6u0eqn7thevup28lnaq8",  # fullwidth digits
    "cus\uff3f00mwxf6u0eqn7thevup28lnaq8",  # fullwidth low line
    "cus_00mwxf6u0eqn7thevup28lnaq\u0668",  # Arabic-Indic eight
    "cus_00mwxf6u0eqn7thevup28lnaq8\u200b",  # zero-width space
]


@pytest.mark.parametrize("lookalike", LOOKALIKES)
def test_unicode_lookalike_ids_are_missing_objects(client, customer, lookalike):
    real = customer["id"]
    fake = lookalike.replace("00mwxf6u0eqn7thevup28lnaq", real[4:-1])
    response = client.get(f"/v1/customers/{fake}")
    assert_error(
        response, 404, "invalid_request_error", "resource_missing", message=f"No such customer: '{fake}'."
    )
    assert_error(
        client.get("/v1/customers", {"starting_after": fake}),
        400,
        "invalid_request_error",
        "parameter_invalid",
    )
    assert_error(client.get(f"/v1/customers/{fake}/health"), 404, "invalid_request_error", "resource_missing")


@pytest.mark.parametrize(
    "cursor",
    [
        # Within the query's 4,096 bytes; past them is a 414 (tests/platform/test_request_limits.py).
        "cus_" + "a" * 4000,
        "x" * 4050,
        "evt_00mwxf6u0eqn7thevup28lnaq8",  # another resource's id
        "cus_00mwxf6u0eqn7thevup28lnaq8' OR '1'='1",
        "cus_../../etc/passwd",
        "%ff%fe",
    ],
)
@pytest.mark.parametrize(
    "path", ["/v1/customers", "/v1/events", "/v1/webhooks", "/v1/integrations", "/v1/health/at-risk"]
)
@pytest.mark.parametrize("param", ["starting_after", "ending_before"])
def test_oversized_and_forged_cursors_are_a_400(client, path, param, cursor):
    response = client.get(f"{path}?{param}={cursor}")
    assert_error(response, 400, "invalid_request_error", "parameter_invalid", param=param)


def test_a_well_formed_cursor_nobody_has_is_answered_like_any_other(client, other_client, customer):
    foreign = other_client.post("/v1/customers", {"name": "Theirs"}).json()["id"]
    missing = foreign[:-4] + ("aaaa" if not foreign.endswith("aaaa") else "bbbb")
    first, second = (
        client.get("/v1/customers", {"starting_after": foreign}),
        client.get("/v1/customers", {"starting_after": missing}),
    )
    assert first.status_code == second.status_code
    assert (
        first.content.replace(foreign.encode(), b"<id>").split(b'"request_id"')[0]
        == second.content.replace(missing.encode(), b"<id>").split(b'"request_id"')[0]
    )


@pytest.mark.parametrize(
    "description", ["ok\r\nX-Injected: 1", "ok\nLocation: https://evil.example", "ok\rX-Injected: 1"]
)
def test_header_injection_through_a_webhook_description_is_refused(client, offline_dns, description):
    response = client.post(
        "/v1/webhooks", {"url": WEBHOOK_URL, "events": ["*"], "description": description}, format="json"
    )
    assert_error(response, 400, "invalid_request_error", "parameter_invalid", param="description")


@pytest.mark.parametrize("event_type", ["login\r\nX-Injected: 1", "login\n", "a b"])
def test_header_injection_through_an_event_type_is_refused(client, customer, event_type):
    response = client.post(
        "/v1/events", {"events": [{"customer_id": customer["id"], "type": event_type}]}, format="json"
    )
    assert response.status_code == 200, response.content
    assert response.json()["rejected"][0]["param"] == "type"
    assert Event.objects.count() == 0


def test_deliveries_carry_only_perlys_headers(client, customer, django_capture_on_commit_callbacks):
    """No field a user controls becomes a header of a webhook delivery."""
    with Receiver() as receiver, override_settings(PERLY_WEBHOOK_ALLOW_PRIVATE_URLS=True):
        with django_capture_on_commit_callbacks(execute=True):
            created = client.post(
                "/v1/webhooks",
                {"url": receiver.url("/hook?x=%0d%0aX-Injected:1"), "events": ["*"], "description": "d"},
                format="json",
            )
        assert created.status_code == 201, created.content
        with django_capture_on_commit_callbacks(execute=True):
            updated = client.patch(
                f"/v1/customers/{customer['id']}",
                {"name": "Name\twith tab", "metadata": {"h": "X-Injected: 1\r\nX-Other: 2"}},
                format="json",
            )
        assert updated.status_code == 200, updated.content
        received = receiver.received()
    assert received, "no delivery arrived"
    assert b"X-Injected: 1\\r\\nX-Other: 2" in received[0].body  # the value travels, escaped, in the body
    for request in received:
        names = {name.lower() for name in request.headers}
        assert not names & {"x-injected", "x-other"}
        assert names <= {
            "host",
            "user-agent",
            "accept-encoding",
            "accept",
            "connection",
            "content-type",
            "content-length",
            "webhook-id",
            "webhook-timestamp",
            "webhook-signature",
        }, names


@pytest.mark.parametrize("value", [42, 4.2, True, ["acct_1"], {"id": "acct_1"}])
@pytest.mark.parametrize("field", ["name", "external_id", "plan", "domain"])
def test_a_string_field_given_another_type_is_a_400_not_coerced(client, field, value):
    """DRF's CharField would store 42 as "42"; the schema says string, so the wrong type is refused."""
    body = {"name": "Typed", field: value}
    response = client.post("/v1/customers", body, format="json")
    error = assert_error(response, 400, "invalid_request_error", "parameter_invalid")
    assert error["param"] == field
    assert not Customer.objects.filter(name__in=["Typed", "42", "4.2"]).exists()
