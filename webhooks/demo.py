"""Demo webhook endpoint for `manage.py seed_demo`.

It is created inactive: example.com is not ours to send traffic to, and an active endpoint
would retry failing deliveries there for a day. Activate it (PATCH active=true) after pointing
it at a receiver you control, or create your own endpoint.
"""

from __future__ import annotations

from perly.models import Workspace
from webhooks import services
from webhooks.models import WebhookEndpoint


def seed(workspace: Workspace) -> WebhookEndpoint:
    endpoint, _secret = services.webhook_endpoint_create(
        workspace_id=workspace.id,
        data={
            "url": "https://example.com/perly-webhooks",
            "description": "Demo endpoint (inactive): point it at your own receiver, then activate it.",
            "events": ["*"],
            "active": False,
        },
    )
    return endpoint
