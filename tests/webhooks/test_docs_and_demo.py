from __future__ import annotations

import pytest

from perly.services import workspace_create
from webhooks import demo
from webhooks.apps import WebhooksConfig  # noqa: F401  (ready() registered the beat entries)

pytestmark = pytest.mark.django_db


def test_openapi_documents_every_webhook_operation(anon_client):
    paths = anon_client.get("/v1/openapi.json").json()["paths"]
    expected = {
        "/v1/webhooks": {"get", "post"},
        "/v1/webhooks/{id}": {"get", "patch", "delete"},
        "/v1/webhooks/{id}/rotate_secret": {"post"},
        "/v1/webhooks/{id}/test": {"post"},
        "/v1/webhooks/{webhook_id}/deliveries": {"get"},
        "/v1/webhooks/{webhook_id}/deliveries/{id}": {"get"},
        "/v1/webhooks/{webhook_id}/deliveries/{id}/retry": {"post"},
    }
    for path, methods in expected.items():
        assert methods <= set(paths[path]), path


def test_sweeper_and_pruner_are_on_beat(settings):
    assert settings.CELERY_BEAT_SCHEDULE["webhooks.sweep_due_messages"] == {
        "task": "webhooks.tasks.sweep_due_messages",
        "schedule": 10.0,
    }
    assert settings.CELERY_BEAT_SCHEDULE["webhooks.prune_messages"]["task"] == "webhooks.tasks.prune_messages"


def test_demo_seed_adds_one_inactive_endpoint(fake_dns, settings):
    settings.PERLY_WEBHOOK_ALLOW_PRIVATE_URLS = False
    fake_dns({"example.com": "93.184.215.14"})
    workspace = workspace_create(slug="demo-webhooks", name="Demo")
    endpoint = demo.seed(workspace)
    assert (endpoint.url, endpoint.active, endpoint.events) == (
        "https://example.com/perly-webhooks",
        False,
        ["*"],
    )
