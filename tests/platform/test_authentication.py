"""Every way a request can fail to authenticate answers 401 in the envelope."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from perly.apikeys import api_key_create, api_key_revoke
from tests.platform.helpers import assert_error, assert_rate_headers

NO_KEY = "No API key provided. Send 'Authorization: Bearer pk_live_...'."
MALFORMED = "Malformed Authorization header. Send 'Authorization: Bearer pk_live_...'."


def _get(header: str | None):
    client = APIClient()
    if header is not None:
        client.credentials(HTTP_AUTHORIZATION=header)
    return client.get("/v1/customers")


def _assert_401(response, code: str, message: str) -> None:
    assert_error(response, 401, "authentication_error", code, message, param=None)
    assert response["WWW-Authenticate"] == 'Bearer realm="perly"'
    assert_rate_headers(response, "anonymous")


@pytest.mark.django_db
def test_missing_header_is_401():
    _assert_401(_get(None), "invalid_api_key", NO_KEY)


@pytest.mark.django_db
@pytest.mark.parametrize("header", ["Bearer", "Bearer   ", "Basic dXNlcjpwYXNz", "pk_live_abc", "Token x"])
def test_malformed_header_is_401(header):
    _assert_401(_get(header), "invalid_api_key", MALFORMED)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "key", ["pk_live_" + "a" * 40, "pk_test_" + "Z9" * 20, "pk_live_short", "sk_live_" + "a" * 40]
)
def test_unknown_key_is_401(key):
    _assert_401(_get(f"Bearer {key}"), "invalid_api_key", "Invalid API key provided.")


def test_revoked_key_is_401(client):
    assert client.get("/v1/customers").status_code == 200
    api_key_revoke(key=client.api_key)
    _assert_401(client.get("/v1/customers"), "invalid_api_key", "This API key has been revoked.")


def test_expired_key_is_401(workspace, make_client):
    client = make_client(workspace, expires_at=timezone.now() - timedelta(seconds=1))
    _assert_401(client.get("/v1/customers"), "api_key_expired", "This API key has expired.")


def test_key_expiring_later_works(workspace, make_client):
    client = make_client(workspace, expires_at=timezone.now() + timedelta(days=1))
    assert client.get("/v1/customers").status_code == 200


def test_scheme_is_case_insensitive(client):
    other = APIClient()
    other.credentials(HTTP_AUTHORIZATION=f"bearer {client.secret}")
    assert other.get("/v1/customers").status_code == 200


def test_test_workspace_keys_read_pk_test(db):
    from perly.services import workspace_create

    workspace = workspace_create(slug="sandbox", is_test=True)
    _, secret = api_key_create(workspace=workspace)
    assert secret.startswith("pk_test_")
    assert len(secret) - len("pk_test_") >= 32
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert client.get("/v1/customers").status_code == 200


def test_live_keys_are_stored_only_as_a_hash(workspace):
    key, secret = api_key_create(workspace=workspace)
    assert secret.startswith("pk_live_")
    assert len(secret) - len("pk_live_") >= 32
    assert key.id.startswith("key_")
    stored = [str(value) for value in key.__dict__.values()]
    assert secret not in stored
    assert secret[len("pk_live_") :] not in "".join(stored)


def test_unknown_route_without_key_is_401_not_404(db):
    _assert_401(APIClient().get("/v1/nothing-here"), "invalid_api_key", NO_KEY)
