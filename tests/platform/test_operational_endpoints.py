"""/healthz, /readyz, /v1/openapi.json and /docs/ need no key."""

from __future__ import annotations

import re

import pytest
from django.contrib.staticfiles import finders
from django.test import override_settings
from drf_spectacular.validation import validate_schema

from perly.redis_client import reset_redis
from tests.platform.helpers import assert_rate_headers


@pytest.mark.django_db
def test_healthz(anon_client):
    response = anon_client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.django_db
def test_readyz_with_database_and_redis_up(anon_client):
    response = anon_client.get("/readyz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["checks"] == {"database": "ok", "redis": "ok"}


@pytest.mark.django_db
def test_readyz_is_503_when_redis_is_unreachable(anon_client):
    with override_settings(REDIS_URL="redis://127.0.0.1:1/0"):
        reset_redis()
        try:
            response = anon_client.get("/readyz")
        finally:
            reset_redis()
    assert response.status_code == 503
    assert response.json()["checks"] == {"database": "ok", "redis": "unavailable"}


@pytest.fixture
def schema(anon_client, db):
    response = anon_client.get("/v1/openapi.json")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/vnd.oai.openapi+json")
    assert_rate_headers(response, "anonymous")
    return response.json()


def test_openapi_is_public_and_valid(schema):
    assert schema["openapi"].startswith("3.")
    validate_schema(schema)  # raises on an invalid OpenAPI 3 document


def test_openapi_documents_customer_list_filters(schema):
    parameters = {p["name"]: p for p in schema["paths"]["/v1/customers"]["get"]["parameters"]}
    expected = {
        "email",
        "external_id",
        "domain",
        "plan",
        "owner",
        "lifecycle_stage",
        "health_status",
        "health_score_min",
        "health_score_max",
        "created_after",
        "created_before",
        "churned_after",
        "churned_before",
        "q",
        "limit",
        "starting_after",
        "ending_before",
    }
    assert set(parameters) == expected
    assert all(p["in"] == "query" and p.get("description") for p in parameters.values())
    assert parameters["lifecycle_stage"]["schema"]["enum"] == ["active", "churned", "onboarding", "trial"]
    assert parameters["limit"]["schema"]["maximum"] == 100


def _ref(schema, node):
    return schema["components"]["schemas"][node["$ref"].rsplit("/", 1)[1]]


def test_openapi_documents_customer_bodies(schema):
    create = schema["paths"]["/v1/customers"]["post"]
    body = _ref(schema, create["requestBody"]["content"]["application/json"]["schema"])
    assert body["required"] == ["name"]
    assert set(body["properties"]) == {
        "name",
        "email",
        "domain",
        "external_id",
        "plan",
        "owner",
        "lifecycle_stage",
        "churned_at",
        "metadata",
    }
    assert body["properties"]["metadata"]["maxProperties"] == 50
    patch = schema["paths"]["/v1/customers/{id}"]["patch"]
    patch_body = _ref(schema, patch["requestBody"]["content"]["application/json"]["schema"])
    assert "required" not in patch_body
    assert set(patch_body["properties"]) == set(body["properties"])
    customer = _ref(schema, create["responses"]["201"]["content"]["application/json"]["schema"])
    assert {"id", "object", "health", "created_at", "updated_at"} <= set(customer["properties"])


@pytest.mark.parametrize(
    ("path", "method", "statuses"),
    [
        ("/v1/customers", "get", {"200", "400", "401", "403", "429"}),
        ("/v1/customers", "post", {"201", "400", "401", "403", "409", "413", "429"}),
        ("/v1/customers/{id}", "get", {"200", "401", "403", "404", "429"}),
        ("/v1/customers/{id}", "patch", {"200", "400", "401", "403", "404", "409", "413", "429"}),
        ("/v1/customers/{id}", "delete", {"200", "401", "403", "404", "429"}),
    ],
)
def test_openapi_documents_customer_error_responses(schema, path, method, statuses):
    operation = schema["paths"][path][method]
    assert statuses <= set(operation["responses"])
    for status in statuses - {"200", "201"}:
        content = operation["responses"][status]["content"]["application/json"]["schema"]
        assert content == {"$ref": "#/components/schemas/Error"}
    assert operation["security"] == [{"ApiKey": []}]
    assert "X-RateLimit-Remaining" in operation["responses"]["401"]["headers"]


def test_openapi_documents_idempotency_on_post(schema):
    params = schema["paths"]["/v1/customers"]["post"]["parameters"]
    assert {"name": "Idempotency-Key", "in": "header"}.items() <= params[0].items()


@pytest.mark.django_db
def test_docs_page_uses_only_local_assets(anon_client):
    response = anon_client.get("/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assert not re.search(r"https?://", html)
    assert "/v1/openapi.json" in html
    assets = re.findall(r"""(?:src|href)=["']/static/([^"']+)["']""", html)
    assert any("swagger-ui" in asset for asset in assets)
    for asset in assets:
        assert finders.find(asset.split("?")[0]), asset
