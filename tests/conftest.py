"""Fixtures that build on each other: workspace -> api key -> client."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from perly.apikeys import api_key_create, clear_key_cache
from perly.redis_client import get_redis
from perly.services import workspace_create


@pytest.fixture(autouse=True)
def _fresh_state(request):
    """Each test starts with empty rate-limit counters and an empty key cache."""
    clear_key_cache()
    client = get_redis()
    if client is not None:
        client.flushdb()
    from django.core.cache import cache

    cache.clear()
    yield
    clear_key_cache()


@pytest.fixture
def workspace(db):
    return workspace_create(slug="acme", name="Acme")


@pytest.fixture
def other_workspace(db):
    return workspace_create(slug="globex", name="Globex")


@pytest.fixture
def make_client(db):
    """make_client(workspace, scopes="read,write", **limits) -> APIClient with that key."""

    def make(workspace, scopes="read,write", **key_options):
        key, secret = api_key_create(workspace=workspace, scopes=scopes, **key_options)
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
        client.api_key = key
        client.secret = secret
        return client

    return make


@pytest.fixture
def client(workspace, make_client):
    return make_client(workspace)


@pytest.fixture
def other_client(other_workspace, make_client):
    return make_client(other_workspace)


@pytest.fixture
def anon_client():
    return APIClient()


@pytest.fixture
def customer(client):
    response = client.post(
        "/v1/customers", {"name": "Initech", "email": "ops@initech.com", "external_id": "acct_1"}
    )
    assert response.status_code == 201, response.content
    return response.json()


from tests.support.worker import broker_mode, celery_worker_process  # noqa: E402,F401
