"""Webhook services. `webhook_event_publish` is the outbox entry point every app calls inside
the transaction that made the change it describes; the API and the admin call the rest."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from functools import lru_cache

import orjson
from django.conf import settings
from django.db import DatabaseError, transaction
from django.utils import timezone

from perly.crypto import decrypt_text, encrypt_text
from perly.errors import ApiError
from perly.models import Workspace
from perly.timestamps import iso
from webhooks.catalog import EVENT_TYPES, is_subscribed
from webhooks.models import EndpointStatus, MessageStatus, WebhookEndpoint, WebhookMessage
from webhooks.signing import generate_secret
from webhooks.ssrf import UrlNotAllowed, check_url

logger = logging.getLogger("perly.webhooks")

MAX_ENDPOINTS_PER_WORKSPACE = 20
PREVIOUS_SECRET_TTL = timedelta(hours=24)
ENDPOINT_FIELDS = ("url", "description", "events", "active")


# --- Publishing (the outbox) -------------------------------------------------------------------


def build_payload(
    *, message_id: str, event_type: str, created_at: datetime, data_object: dict, previous: dict | None
) -> str:
    """The event body, serialized once: these exact bytes are signed and sent on every attempt."""
    event = {
        "id": message_id,
        "object": "event",
        "type": event_type,
        "created_at": iso(created_at),
        "data": {"object": data_object, "previous_attributes": previous},
    }
    return orjson.dumps(event).decode()


def _new_message(endpoint: WebhookEndpoint, event_type: str, data_object: dict, previous: dict | None):
    now = timezone.now()
    message = WebhookMessage(
        workspace_id=endpoint.workspace_id,
        endpoint=endpoint,
        event_type=event_type,
        created_at=now,
        next_attempt_at=now,
        # The on_commit enqueue is responsible for it; the sweeper steps in if that never happens.
        enqueued_at=now,
    )
    message.payload = build_payload(
        message_id=message.id,
        event_type=event_type,
        created_at=now,
        data_object=data_object,
        previous=previous,
    )
    return message


def _subscribed_endpoints(workspace_id: str, event_type: str) -> list[WebhookEndpoint]:
    # At most 20 endpoints per workspace: filtering the subscriptions in Python is portable and cheap.
    return [
        endpoint
        for endpoint in WebhookEndpoint.objects.filter(
            workspace_id=workspace_id, active=True, status=EndpointStatus.ENABLED
        ).only("id", "workspace_id", "events")
        if is_subscribed(endpoint.events, event_type)
    ]


def webhook_event_publish(
    *,
    workspace_id: str,
    event_type: str,
    data_object: dict,
    previous_attributes: dict | None = None,
) -> list[str]:
    """Write one message per subscribed, deliverable endpoint in the caller's transaction and
    queue their deliveries once it commits. Returns the new message ids."""
    if event_type not in EVENT_TYPES:
        raise ValueError(f"Unknown webhook event type {event_type!r}; add it to webhooks/catalog.py.")
    endpoints = _subscribed_endpoints(workspace_id, event_type)
    if not endpoints:
        return []
    messages = [_new_message(e, event_type, data_object, previous_attributes) for e in endpoints]
    WebhookMessage.objects.bulk_create(messages)
    ids = [message.id for message in messages]
    transaction.on_commit(lambda: enqueue_messages(ids))
    return ids


def webhook_events_publish_many(
    *,
    workspace_id: str,
    event_type: str,
    data_objects: list[dict],
    previous_attributes: list[dict | None] | None = None,
) -> list[str]:
    """`webhook_event_publish` for many objects of one event type (a sync creating a page of
    customers): the same messages, in the same order, from one endpoint query and one insert."""
    if event_type not in EVENT_TYPES:
        raise ValueError(f"Unknown webhook event type {event_type!r}; add it to webhooks/catalog.py.")
    if previous_attributes is not None and len(previous_attributes) != len(data_objects):
        raise ValueError("previous_attributes must have one entry per data object.")
    if not data_objects:
        return []
    endpoints = _subscribed_endpoints(workspace_id, event_type)
    if not endpoints:
        return []
    previous = previous_attributes or [None] * len(data_objects)
    messages = [
        _new_message(endpoint, event_type, data_object, prior)
        for data_object, prior in zip(data_objects, previous, strict=True)
        for endpoint in endpoints
    ]
    WebhookMessage.objects.bulk_create(messages, batch_size=1000)
    ids = [message.id for message in messages]
    transaction.on_commit(lambda: enqueue_messages(ids))
    return ids


def enqueue_messages(message_ids: list[str], countdown: float | None = None) -> int:
    """Queue a delivery task per message. A broker outage is not an error here: the rows stay
    due and un-queued, and the sweeper queues them once the broker answers again."""
    from webhooks.tasks import deliver_message

    queued = 0
    try:
        # One producer (and broker connection) for the batch, not one acquired per message.
        with deliver_message.app.producer_or_acquire() as producer:
            for message_id in message_ids:
                # retry=False: fail fast when the broker is down; the sweeper is the retry.
                deliver_message.apply_async(
                    (message_id,), countdown=countdown, retry=False, producer=producer
                )
                queued += 1
    except Exception as exc:  # kombu/redis raise a variety of connection errors
        remaining = message_ids[queued:]
        logger.warning(
            "could not queue %d webhook deliveries (%s: %s); the sweeper will retry",
            len(remaining),
            exc.__class__.__name__,
            exc,
        )
        WebhookMessage.objects.filter(pk__in=remaining, status=MessageStatus.PENDING).update(enqueued_at=None)
    return queued


# --- Endpoints -----------------------------------------------------------------------------------


def _check_url(url: str) -> str:
    """The URL as Perly will call it (rebuilt from its checked parts), or 400 url_not_allowed."""
    try:
        return check_url(url).url
    except UrlNotAllowed as exc:
        raise ApiError(400, "url_not_allowed", str(exc), param="url") from None


def endpoint_secrets(endpoint: WebhookEndpoint, now: datetime | None = None) -> list[str]:
    """The secrets that sign a delivery: the current one, plus the previous for 24 h after a rotation."""
    now = now or timezone.now()
    keys = (tuple(settings.PERLY_ENCRYPTION_KEYS), settings.SECRET_KEY)
    secrets = [_decrypted_secret(endpoint.secret_encrypted, keys)]
    if (
        endpoint.previous_secret_encrypted
        and endpoint.previous_secret_expires_at
        and (endpoint.previous_secret_expires_at > now)
    ):
        secrets.append(_decrypted_secret(endpoint.previous_secret_encrypted, keys))
    return secrets


@lru_cache(maxsize=1024)
def _decrypted_secret(token: str, keys: tuple) -> str:
    """Decrypting costs more than signing, and a worker signs for the same few endpoints over
    and over: remember the plaintext by ciphertext (a rotation writes a new ciphertext) and by
    the configured keys (`keys`: a change of keys is never answered from the cache)."""
    return decrypt_text(token)


def webhook_endpoint_create(*, workspace_id: str, data: dict) -> tuple[WebhookEndpoint, str]:
    """Returns the endpoint and its secret (shown once, in the create response)."""
    data = {**data, "url": _check_url(data["url"])}
    secret = generate_secret()
    with transaction.atomic():
        # Lock the workspace row so two concurrent creates cannot both pass the cap.
        Workspace.objects.select_for_update().filter(pk=workspace_id).first()
        count = WebhookEndpoint.objects.filter(workspace_id=workspace_id).count()
        if count >= MAX_ENDPOINTS_PER_WORKSPACE:
            raise ApiError(
                400,
                "endpoint_limit_reached",
                f"A workspace can have at most {MAX_ENDPOINTS_PER_WORKSPACE} webhook endpoints; "
                "delete one before adding another.",
            )
        now = timezone.now()
        endpoint = WebhookEndpoint.objects.create(
            workspace_id=workspace_id,
            url=data["url"],
            description=data.get("description"),
            events=list(data["events"]),
            active=data.get("active", True),
            secret_encrypted=encrypt_text(secret),
            created_at=now,
            updated_at=now,
        )
    return endpoint, secret


def webhook_endpoint_update(*, workspace_id: str, endpoint_id: str, data: dict) -> WebhookEndpoint:
    if "url" in data:
        data = {**data, "url": _check_url(data["url"])}
    with transaction.atomic():
        endpoint = WebhookEndpoint.objects.select_for_update().get(workspace_id=workspace_id, pk=endpoint_id)
        for name in ENDPOINT_FIELDS:
            if name in data:
                setattr(endpoint, name, list(data[name]) if name == "events" else data[name])
        if data.get("status") == EndpointStatus.ENABLED:
            _enable(endpoint)
        elif data.get("status") == EndpointStatus.DISABLED and endpoint.status != EndpointStatus.DISABLED:
            _disable(endpoint, "Disabled through the API.")
        endpoint.updated_at = timezone.now()
        endpoint.save()
        if not endpoint.active:
            _fail_pending(endpoint, "The endpoint is inactive.")
    return endpoint


def _enable(endpoint: WebhookEndpoint) -> None:
    endpoint.status = EndpointStatus.ENABLED
    endpoint.disabled_reason = None
    endpoint.disabled_at = None
    endpoint.failing_since = None


def _disable(endpoint: WebhookEndpoint, reason: str) -> None:
    endpoint.status = EndpointStatus.DISABLED
    endpoint.disabled_reason = reason
    endpoint.disabled_at = timezone.now()
    _fail_pending(endpoint, f"The endpoint was disabled: {reason}")


def _fail_pending(endpoint: WebhookEndpoint, reason: str) -> int:
    return WebhookMessage.objects.filter(endpoint=endpoint, status=MessageStatus.PENDING).update(
        status=MessageStatus.FAILED, last_error=reason[:500], locked_until=None, enqueued_at=None
    )


def webhook_endpoint_set_status(*, endpoint_id: str, enabled: bool, reason: str) -> WebhookEndpoint:
    """Enable or disable an endpoint (admin actions, 410 answers, the 5-day failure rule)."""
    with transaction.atomic():
        endpoint = WebhookEndpoint.objects.select_for_update().get(pk=endpoint_id)
        if enabled:
            _enable(endpoint)
        else:
            _disable(endpoint, reason)
        endpoint.updated_at = timezone.now()
        endpoint.save()
    if not enabled:
        logger.info("webhook endpoint %s disabled: %s", endpoint_id, reason)
    return endpoint


def webhook_endpoint_rotate_secret(*, endpoint_id: str) -> tuple[WebhookEndpoint, str]:
    """A new secret signs from now on; the old one keeps signing alongside it for 24 hours."""
    secret = generate_secret()
    with transaction.atomic():
        endpoint = WebhookEndpoint.objects.select_for_update().get(pk=endpoint_id)
        now = timezone.now()
        endpoint.previous_secret_encrypted = endpoint.secret_encrypted
        endpoint.previous_secret_expires_at = now + PREVIOUS_SECRET_TTL
        endpoint.secret_encrypted = encrypt_text(secret)
        endpoint.updated_at = now
        endpoint.save()
    return endpoint, secret


def webhook_endpoint_delete(*, workspace_id: str, endpoint_id: str) -> None:
    WebhookEndpoint.objects.filter(workspace_id=workspace_id, pk=endpoint_id).delete()


def _require_deliverable(endpoint: WebhookEndpoint) -> None:
    if not endpoint.deliverable:
        state = "inactive" if not endpoint.active else "disabled"
        raise ApiError(
            409,
            "endpoint_disabled",
            f"The webhook endpoint is {state}; enable it (PATCH active=true, status=enabled) first.",
        )


def webhook_endpoint_send_test(*, workspace_id: str, endpoint_id: str) -> WebhookMessage:
    """Queue a `webhook.test` event to this endpoint only, whatever it subscribes to."""
    from webhooks.api.serializers import endpoint_representation

    with transaction.atomic():
        endpoint = WebhookEndpoint.objects.get(workspace_id=workspace_id, pk=endpoint_id)
        _require_deliverable(endpoint)
        message = _new_message(endpoint, "webhook.test", endpoint_representation(endpoint), None)
        message.save(force_insert=True)
        transaction.on_commit(lambda: enqueue_messages([message.id]))
    return message


# --- Messages ------------------------------------------------------------------------------------


def webhook_message_retry(*, message_id: str) -> WebhookMessage:
    """Send a message again now, with a fresh retry schedule (API retry and the admin's "retry now")."""
    in_progress = ApiError(
        409, "delivery_in_progress", "This message is being delivered right now; retry later."
    )
    try:
        with transaction.atomic():
            return _message_retry(message_id, in_progress)
    except DatabaseError as exc:
        # NOWAIT failed (SQLSTATE 55P03): a worker holds the row for an attempt in flight.
        if getattr(exc.__cause__, "sqlstate", None) == "55P03":
            raise in_progress from None
        raise


def _message_retry(message_id: str, in_progress: ApiError) -> WebhookMessage:
    message = (
        WebhookMessage.objects.select_for_update(nowait=True, of=("self",))
        .select_related("endpoint")
        .get(pk=message_id)
    )
    _require_deliverable(message.endpoint)
    now = timezone.now()
    if message.status == MessageStatus.PENDING and message.locked_until and message.locked_until > now:
        raise in_progress
    message.status = MessageStatus.PENDING
    message.retry_step = 0
    message.next_attempt_at = now
    message.enqueued_at = now
    message.locked_until = None
    message.delivered_at = None
    message.save()
    transaction.on_commit(lambda: enqueue_messages([message.id]))
    return message
