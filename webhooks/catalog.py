"""Every webhook event type Perly sends. Adding a type is one line here.

Types are dot-delimited `<resource>.<change>`; "*" subscribes an endpoint to all of them.
"""

from __future__ import annotations

WILDCARD = "*"

EVENT_TYPES: dict[str, str] = {
    "customer.created": "A customer was created.",
    "customer.updated": "A customer's attributes changed (previous_attributes holds the old values).",
    "customer.deleted": "A customer was deleted.",
    "customer.churned": "A customer churned (API, admin or Stripe); data.object is the customer, churned_at set.",
    "health.score_changed": "A health score moved by at least 5 points since the last notification, or its status changed.",
    "health.status_changed": "A customer's health status changed.",
    "health.at_risk": "A customer's health crossed below the at-risk threshold.",
    "integration.sync_succeeded": "An integration sync run finished successfully.",
    "integration.sync_failed": "An integration sync run failed.",
    "integration.disconnected": "An integration was disconnected.",
    "webhook.test": "Sent by POST /v1/webhooks/:id/test.",
}


def valid_subscriptions() -> list[str]:
    """What an endpoint's `events` may contain, for error messages and the OpenAPI enum."""
    return [WILDCARD, *EVENT_TYPES]


def is_subscribed(events: list[str], event_type: str) -> bool:
    return WILDCARD in events or event_type in events
