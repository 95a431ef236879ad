"""Every integration write: connect, disconnect, request a sync, schedule, reap. The API, the
admin and the Celery tasks call these."""

from __future__ import annotations

import logging
import re
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from integrations import config, sync
from integrations.api.serializers import integration_representation, sync_run_representation
from integrations.models import (
    ACTIVE_SYNC_STATUSES,
    Integration,
    IntegrationStatus,
    SyncRun,
    SyncStatus,
    SyncTrigger,
)
from integrations.providers import connector_for
from integrations.providers.base import CredentialsInvalid, ProviderError, RetryPolicy
from perly.crypto import encrypt_json
from perly.errors import ApiError
from webhooks.services import webhook_event_publish

logger = logging.getLogger("perly.integrations")


def check_retry_policy() -> RetryPolicy:
    """A credentials check runs inside an API request: retry briefly, never park the request.
    Never slower than the sync's own (settings-driven) policy."""
    general = RetryPolicy.from_settings()
    return RetryPolicy(
        max_retries=2,
        base_delay=min(0.2, general.base_delay),
        max_delay=min(1.0, general.max_delay),
        max_retry_after=min(3.0, general.max_retry_after),
    )


def _hint(secret: str, keep_prefix: bool) -> str:
    """'sk_live_abc...9xYz' -> 'sk_…9xYz': enough to recognise a key, useless to an attacker."""
    tail = secret[-4:] if len(secret) >= 16 else ""
    head = secret[:3] if keep_prefix and len(secret) >= 16 else ""
    return f"{head}…{tail}"


def credentials_hint(provider: str, credentials: dict) -> dict:
    if provider == "stripe":
        return {"api_key": _hint(credentials["api_key"], keep_prefix=True)}
    if provider == "hubspot":
        return {"access_token": _hint(credentials["access_token"], keep_prefix=False)}
    hint = {
        "client_id": _hint(credentials["client_id"], keep_prefix=False),
        "client_secret": _hint(credentials["client_secret"], keep_prefix=False),
    }
    if credentials.get("login_url"):
        hint["login_url"] = credentials["login_url"]
    return hint


def _live(workspace_id: str, provider: str) -> Integration | None:
    return (
        Integration.objects.filter(workspace_id=workspace_id, provider=provider)
        .exclude(status=IntegrationStatus.DISCONNECTED)
        .first()
    )


def _already_exists(existing: Integration | None, provider: str) -> ApiError:
    suffix = f": '{existing.pk}'" if existing else ""
    return ApiError(
        409,
        "resource_already_exists",
        f"This workspace already has a live {provider} integration{suffix}. Disconnect it first.",
        param="provider",
    )


def _enqueue(run_id: str) -> None:
    from integrations.tasks import run_sync

    def send() -> None:
        try:
            # retry=False: fail fast when the broker is down; the reaper re-queues lost runs.
            run_sync.apply_async((run_id,), retry=False)
        except Exception as exc:  # kombu/redis raise a variety of connection errors
            logger.warning("could not queue sync %s (%s); the reaper will", run_id, exc)

    transaction.on_commit(send)


def _queue_run(*, workspace_id: str, integration_id: str, trigger: str) -> SyncRun:
    """Create a queued run and send its task once the caller's transaction commits.

    The partial unique index allows one queued-or-running run per integration: a second one
    raises IntegrityError, which each caller turns into its own answer."""
    run = SyncRun.objects.create(
        workspace_id=workspace_id, integration_id=integration_id, trigger=trigger, stats=sync.empty_stats()
    )
    _enqueue(run.pk)
    return run


PROVIDER_NAMES = {"stripe": "Stripe", "hubspot": "HubSpot", "salesforce": "Salesforce"}


def credentials_check_error(provider: str, exc: CredentialsInvalid | ProviderError) -> ApiError:
    """The one sentence a failed credentials check says, in the API's error and on the admin's
    Connect page alike: the provider refused the credentials (with its own reason), or it could
    not be reached. The second says nothing about why (no SDK text, nothing about the network)."""
    name = PROVIDER_NAMES.get(provider, provider)
    refused = isinstance(exc, CredentialsInvalid) or (
        exc.status is not None and 400 <= exc.status < 500 and exc.status != 429
    )
    if refused:
        reason = re.sub(rf"^{name} answered \d+: ", "", exc.reason)  # the name is said once
        return ApiError(
            400,
            "integration_credentials_invalid",
            f"{name} refused these credentials: {reason}",
            param="credentials",
        )
    return ApiError(
        502,
        "integration_provider_unavailable",
        f"Could not reach {name} to check the credentials; nothing was saved. Try again in a few minutes.",
    )


def integration_create(
    *, workspace_id: str, provider: str, credentials: dict, config_data: dict
) -> Integration:
    """Check the credentials with the provider, then store them encrypted and start a sync."""
    existing = _live(workspace_id, provider)
    if existing is not None:
        raise _already_exists(existing, provider)
    connector = connector_for(provider, credentials)
    connector.caller.policy = check_retry_policy()
    try:
        connector.check()
    except (CredentialsInvalid, ProviderError) as exc:
        raise credentials_check_error(provider, exc) from None
    finally:
        connector.close()

    now = timezone.now()
    integration = Integration(
        workspace_id=workspace_id,
        provider=provider,
        status=IntegrationStatus.ACTIVE,
        credentials_encrypted=encrypt_json(credentials),
        credentials_hint=credentials_hint(provider, credentials),
        config={**config.DEFAULTS, **config_data},
        created_at=now,
        updated_at=now,
    )
    try:
        with transaction.atomic():
            integration.save(force_insert=True)
            _queue_run(workspace_id=workspace_id, integration_id=integration.pk, trigger=SyncTrigger.INITIAL)
    except IntegrityError:
        raise _already_exists(_live(workspace_id, provider), provider) from None
    return Integration.objects.get(pk=integration.pk)


def integration_disconnect(*, workspace_id: str, integration_id: str) -> Integration:
    """Wipe the credentials and stop the schedule. A running sync sees it at its next page."""
    with transaction.atomic():
        integration = Integration.objects.select_for_update().get(
            workspace_id=workspace_id, pk=integration_id
        )
        if integration.status == IntegrationStatus.DISCONNECTED:
            return integration
        now = timezone.now()
        integration.status = IntegrationStatus.DISCONNECTED
        integration.credentials_encrypted = ""
        integration.credentials_hint = {}
        integration.next_sync_at = None
        integration.disconnected_at = integration.updated_at = now
        integration.save()
        SyncRun.objects.filter(integration=integration, status=SyncStatus.QUEUED).update(
            status=SyncStatus.FAILED,
            finished_at=now,
            error="The integration was disconnected before this sync started.",
        )
        webhook_event_publish(
            workspace_id=workspace_id,
            event_type="integration.disconnected",
            data_object=integration_representation(integration),
        )
    return integration


def active_run(integration_id: str) -> SyncRun | None:
    return SyncRun.objects.filter(integration_id=integration_id, status__in=ACTIVE_SYNC_STATUSES).first()


def sync_run_request(*, workspace_id: str, integration_id: str, trigger: str = SyncTrigger.MANUAL) -> dict:
    """Queue a sync; returns the run as the API shows it at that moment (queued)."""
    integration = Integration.objects.get(workspace_id=workspace_id, pk=integration_id)
    if integration.status == IntegrationStatus.DISCONNECTED:
        raise ApiError(
            400,
            "integration_disconnected",
            f"Integration '{integration_id}' is disconnected; connect the provider again to sync.",
        )
    try:
        with transaction.atomic():
            run = _queue_run(workspace_id=workspace_id, integration_id=integration.pk, trigger=trigger)
            representation = sync_run_representation(run)
    except IntegrityError:
        current = active_run(integration_id)
        name = f": '{current.pk}'" if current else ""
        raise ApiError(
            409, "sync_in_progress", f"A sync of this integration is already queued or running{name}."
        ) from None
    return representation


def sync_run_execute(*, sync_run_id: str) -> str:
    return sync.execute(sync_run_id)


def integrations_enqueue_due(*, now=None, limit: int = 500) -> int:
    """Queue a scheduled run for every integration whose next_sync_at has passed."""
    now = now or timezone.now()
    due = list(
        Integration.objects.filter(
            status__in=[IntegrationStatus.ACTIVE, IntegrationStatus.ERROR], next_sync_at__lte=now
        ).values_list("pk", "workspace_id")[:limit]
    )
    queued = 0
    for integration_id, workspace_id in due:
        try:
            with transaction.atomic():
                _queue_run(
                    workspace_id=workspace_id, integration_id=integration_id, trigger=SyncTrigger.SCHEDULED
                )
            queued += 1
        except IntegrityError:
            continue  # a run is already queued or running: the database said so
    return queued


def sync_runs_reap_stale(*, now=None) -> tuple[int, int]:
    """Fail runs whose worker died (no heartbeat), and re-enqueue queued runs whose task was lost.

    Returns (failed, requeued). The failed run's integration is due at once; its next run
    resumes from the last committed checkpoint."""
    now = now or timezone.now()
    stale_before = now - timedelta(seconds=config.stale_run_seconds())
    failed = 0
    for run in SyncRun.objects.filter(status=SyncStatus.RUNNING, heartbeat_at__lt=stale_before):
        with transaction.atomic():
            updated = SyncRun.objects.filter(
                pk=run.pk, status=SyncStatus.RUNNING, heartbeat_at__lt=stale_before
            ).update(
                status=SyncStatus.FAILED,
                finished_at=now,
                error="The worker running this sync stopped responding; the next sync resumes from the last checkpoint.",
            )
            if not updated:
                continue
            Integration.objects.filter(pk=run.integration_id, status=IntegrationStatus.SYNCING).update(
                status=IntegrationStatus.ERROR, next_sync_at=now, updated_at=now
            )
            run.refresh_from_db()
            webhook_event_publish(
                workspace_id=run.workspace_id,
                event_type="integration.sync_failed",
                data_object=sync_run_representation(run),
            )
            failed += 1
    lost_before = now - timedelta(seconds=config.lost_task_seconds())
    requeued = 0
    for run_id in SyncRun.objects.filter(status=SyncStatus.QUEUED, created_at__lt=lost_before).values_list(
        "pk", flat=True
    ):
        # Harmless if the original task still runs: only one claim can succeed.
        from integrations.tasks import run_sync

        run_sync.delay(run_id)
        requeued += 1
    return failed, requeued
