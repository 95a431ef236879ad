"""Every error path answers the JSON envelope: validation, JSON, routing, methods, size, crashes."""

from __future__ import annotations

import pytest
from django.test import override_settings
from django.urls import path
from rest_framework.decorators import api_view, authentication_classes, permission_classes
from rest_framework.test import APIClient

from perly import urls as perly_urls
from tests.platform.helpers import assert_error, assert_rate_headers


def test_validation_error_lists_every_field(client):
    response = client.post("/v1/customers", {"email": "nope", "lifecycle_stage": "dead"})
    assert_error(
        response,
        400,
        "invalid_request_error",
        "parameter_missing",
        "name: This field is required.",
        param="name",
        errors=[
            {"param": "name", "code": "parameter_missing", "message": "name: This field is required."},
            {"param": "email", "code": "parameter_invalid", "message": "email: Enter a valid email address."},
            {
                "param": "lifecycle_stage",
                "code": "parameter_invalid",
                "message": 'lifecycle_stage: "dead" is not a valid choice.',
            },
        ],
    )


def test_missing_required_field_is_parameter_missing(client):
    response = client.post("/v1/customers", {})
    assert_error(
        response,
        400,
        "invalid_request_error",
        "parameter_missing",
        "name: This field is required.",
        param="name",
    )


def test_unknown_body_field_is_rejected(client):
    response = client.post("/v1/customers", {"name": "A", "colour": "red"})
    assert_error(
        response,
        400,
        "invalid_request_error",
        "parameter_unknown",
        "Received unknown parameter: colour.",
        param="colour",
    )


@pytest.mark.parametrize("field", ["id", "object", "health", "created_at", "updated_at"])
def test_read_only_body_field_is_rejected(client, field):
    response = client.post("/v1/customers", {"name": "A", field: "x"})
    assert_error(
        response,
        400,
        "invalid_request_error",
        "parameter_read_only",
        f"{field} is read-only and cannot be set.",
        param=field,
    )


@pytest.mark.parametrize("body", [b"{", b'{"name": "a",}', b"\xff\xfe", b'{"name": NaN}'])
def test_malformed_json_is_400(client, body):
    response = client.generic("POST", "/v1/customers", body, content_type="application/json")
    error = assert_error(response, 400, "invalid_request_error", "invalid_json", param=None)
    assert error["message"].startswith("The request body is not valid JSON")


@pytest.mark.parametrize("body", [b"[]", b'"name"', b"null", b"42"])
def test_body_that_is_not_an_object_is_400(client, body):
    response = client.generic("POST", "/v1/customers", body, content_type="application/json")
    assert_error(
        response,
        400,
        "invalid_request_error",
        "parameter_invalid",
        "The request body must be a JSON object.",
        param=None,
    )


def test_form_encoded_body_is_415(client):
    response = client.generic(
        "POST", "/v1/customers", b"name=x", content_type="application/x-www-form-urlencoded"
    )
    assert_error(
        response,
        415,
        "invalid_request_error",
        "unsupported_media_type",
        "Send request bodies as application/json.",
    )


def test_unknown_v1_route_is_404_with_rate_headers(client):
    response = client.get("/v1/widgets/12")
    assert_error(
        response,
        404,
        "invalid_request_error",
        "resource_missing",
        "Unrecognized request URL (GET: /v1/widgets/12).",
        param=None,
    )
    assert_rate_headers(response, "read")


def test_unknown_v1_route_post_is_404_even_with_csrf_checks(client):
    strict = APIClient(enforce_csrf_checks=True)
    strict.credentials(HTTP_AUTHORIZATION=f"Bearer {client.secret}")
    response = strict.post("/v1/widgets", {"a": 1})
    assert_error(response, 404, "invalid_request_error", "resource_missing")
    assert_rate_headers(response, "write")


def test_api_post_is_not_subject_to_csrf(client):
    strict = APIClient(enforce_csrf_checks=True)
    strict.credentials(HTTP_AUTHORIZATION=f"Bearer {client.secret}")
    assert strict.post("/v1/customers", {"name": "A"}).status_code == 201


def test_unknown_customer_id_is_404(client):
    response = client.get("/v1/customers/cus_000000000000000000000000aa")
    assert_error(
        response,
        404,
        "invalid_request_error",
        "resource_missing",
        "No such customer: 'cus_000000000000000000000000aa'.",
        param=None,
    )


def test_method_not_allowed_is_405(client, customer):
    response = client.put(f"/v1/customers/{customer['id']}", {"name": "A"})
    assert_error(response, 405, "invalid_request_error", "method_not_allowed", 'Method "PUT" not allowed.')
    assert_rate_headers(response, "write")
    response = client.delete("/v1/customers")
    assert_error(response, 405, "invalid_request_error", "method_not_allowed", 'Method "DELETE" not allowed.')


def test_body_over_one_mib_is_413(client):
    body = b'{"name": "' + b"a" * (1024 * 1024) + b'"}'
    response = client.generic("POST", "/v1/customers", body, content_type="application/json")
    assert_error(
        response,
        413,
        "invalid_request_error",
        "request_too_large",
        "The request body exceeds the 1 MiB limit for this endpoint.",
        param=None,
    )
    assert_rate_headers(response, "write")


def test_body_just_under_one_mib_is_parsed(client):
    body = b'{"name": "' + b"a" * (1024 * 1024 - 20) + b'"}'
    response = client.generic("POST", "/v1/customers", body, content_type="application/json")
    assert_error(response, 400, "invalid_request_error", "parameter_invalid", param="name")


def test_body_lying_about_its_length_is_413(client):
    response = client.generic(
        "PATCH",
        "/v1/customers/cus_x",
        b"{}",
        content_type="application/json",
        CONTENT_LENGTH=str(10 * 1024 * 1024),
    )
    assert_error(response, 413, "invalid_request_error", "request_too_large")


@api_view(["GET"])
@authentication_classes([])
@permission_classes([])
def _crash(request):
    raise RuntimeError("boom pk_live_secretsecretsecret")


def _crash_plain(request):
    raise RuntimeError("boom")


urlpatterns = [
    path("v1/crash", _crash),
    path("v1/crash-plain", _crash_plain),
    *perly_urls.urlpatterns,
]
handler404 = perly_urls.handler404
handler500 = perly_urls.handler500


@override_settings(ROOT_URLCONF=__name__)
def test_crash_in_an_api_view_is_500_envelope(client, caplog):
    response = client.get("/v1/crash")
    assert_error(
        response,
        500,
        "api_error",
        "internal_error",
        "Something went wrong on our end. Retry later; quote the request id if it persists.",
        param=None,
    )
    assert "boom" not in response.content.decode()
    assert_rate_headers(response, "read")


@override_settings(ROOT_URLCONF=__name__)
def test_crash_in_a_plain_view_is_500_envelope(client):
    client.raise_request_exception = False
    response = client.get("/v1/crash-plain")
    assert_error(response, 500, "api_error", "internal_error", param=None)
    assert "boom" not in response.content.decode()


def test_every_response_has_a_request_id(client, anon_client, db):
    ids = {
        client.get("/v1/customers")["Request-Id"],
        anon_client.get("/v1/customers")["Request-Id"],
        anon_client.get("/healthz")["Request-Id"],
        client.get("/v1/nope")["Request-Id"],
    }
    assert len(ids) == 4
    assert all(value.startswith("req_") for value in ids)
