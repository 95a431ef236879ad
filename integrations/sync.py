"""Running one sync: claim the run, read every stream page by page, write signals, finish.

Each page is one transaction holding the records, the matched customers, the stream cursor and
the run's stats, taken under the integration's row lock. Disconnecting takes the same lock, so
a page either commits before the disconnect or sees it and stops without writing.
"""

from __future__ import annotations

import json
import logging
from datetime import timedelta

from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from customers.models import Customer
from integrations.matching import match_accounts
from integrations.models import (
    Integration,
    IntegrationStatus,
    StreamState,
    SyncedRecord,
    SyncRun,
    SyncStatus,
)
from integrations.outcomes import OUTCOME_BUILDERS
from integrations.probes import probe
from integrations.providers import connector_for
from integrations.providers.base import Connector, Page, ProviderAuthError, ProviderError, Record, Stream
from integrations.signals import build_signals
from perly.crypto import decrypt_json
from perly.errors import ApiError
from perly.logging import mask_secrets

logger = logging.getLogger("perly.integrations")

STAT_KEYS = (
    "records_read",
    "customers_created",
    "customers_updated",
    "customers_matched",
    "signals_written",
    "requests_made",
    "rate_limited_retries",
)
SIGNAL_BATCH = 500


class SyncCancelled(Exception):
    """The integration was disconnected while the run was going."""


def empty_stats() -> dict:
    return dict.fromkeys(STAT_KEYS, 0)


def config_value(integration: Integration, key: str):
    from integrations.config import DEFAULTS

    return (integration.config or {}).get(key, DEFAULTS[key])


def _dedupe(records: list[Record]) -> list[Record]:
    """One row per object per statement (Postgres refuses to upsert a row twice); newest wins."""
    best: dict[tuple[str, str], Record] = {}
    for record in records:
        key = (record.stream, record.provider_id)
        if key not in best or record.version > best[key].version:
            best[key] = record
    return list(best.values())


def _upsert(integration_id: str, records: list[Record], customer_ids: dict[str, str]) -> None:
    if not records:
        return
    table = SyncedRecord._meta.db_table
    rows = [
        {
            "stream": r.stream,
            "provider_id": r.provider_id,
            "parent_id": r.parent_id,
            "customer_id": customer_ids.get(r.provider_id) if r.match else None,
            "data": r.data,
            "version": r.version,
        }
        for r in records
    ]
    # The page travels as one JSON parameter (jsonb_to_recordset) rather than a placeholder per
    # value: the statement is the same whatever the page size, so the driver neither re-parses a
    # 1,000-placeholder string nor quotes values one by one. An older snapshot (a replayed event)
    # never overwrites a newer read. Only the table name is formatted into the SQL.
    sql = (
        f"INSERT INTO {table} (integration_id, stream, provider_id, parent_id, customer_id, data, version, synced_at) "  # noqa: S608
        "SELECT %s, r.stream, r.provider_id, r.parent_id, r.customer_id, r.data, r.version, %s "
        "FROM jsonb_to_recordset(%s::jsonb) "
        "AS r(stream varchar, provider_id varchar, parent_id varchar, customer_id varchar, data jsonb, version bigint) "
        "ON CONFLICT (integration_id, stream, provider_id) DO UPDATE SET "
        "parent_id = excluded.parent_id, data = excluded.data, version = excluded.version, "
        f"synced_at = excluded.synced_at, customer_id = COALESCE(excluded.customer_id, {table}.customer_id) "
        f"WHERE {table}.version <= excluded.version"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [integration_id, timezone.now(), json.dumps(rows)])


def _save_cursor(integration_id: str, stream: str, cursor_value: dict) -> None:
    """The stream's checkpoint as one upsert (update_or_create costs a savepoint and two queries)."""
    StreamState.objects.bulk_create(
        [
            StreamState(
                integration_id=integration_id, stream=stream, cursor=cursor_value, updated_at=timezone.now()
            )
        ],
        update_conflicts=True,
        unique_fields=["integration", "stream"],
        update_fields=["cursor", "updated_at"],
    )


class RunContext:
    def __init__(self, run: SyncRun, integration: Integration, connector: Connector):
        self.run = run
        self.integration = integration
        self.connector = connector
        self.stats = {**empty_stats(), **(run.stats or {})}
        self.base_requests = self.stats["requests_made"]
        self.base_retries = self.stats["rate_limited_retries"]

    def sync_request_stats(self) -> None:
        caller = self.connector.caller.stats
        self.stats["requests_made"] = self.base_requests + caller.requests_made
        self.stats["rate_limited_retries"] = self.base_retries + caller.rate_limited_retries


def commit_page(ctx: RunContext, stream: Stream, page: Page) -> None:
    integration = ctx.integration
    with transaction.atomic():
        status = (
            Integration.objects.select_for_update()
            .filter(pk=integration.pk)
            .values_list("status", flat=True)
            .first()
        )
        if status in (None, IntegrationStatus.DISCONNECTED):
            raise SyncCancelled
        records = _dedupe(page.records)
        accounts = [r for r in records if r.match is not None]
        customer_ids: dict[str, str] = {}
        if accounts:
            linked = dict(
                probe(
                    table=SyncedRecord._meta.db_table,
                    columns=("provider_id", "customer_id"),
                    scope=("integration_id", integration.pk),
                    key="provider_id",
                    values=[r.provider_id for r in accounts],
                    where="stream = %s",
                    where_params=(accounts[0].stream,),
                )
            )
            outcome = match_accounts(
                workspace_id=integration.workspace_id,
                records=accounts,
                linked=linked,
                create_customers=bool(config_value(integration, "create_customers")),
            )
            customer_ids = outcome.customer_ids
            ctx.stats["customers_created"] += outcome.created
            ctx.stats["customers_matched"] += outcome.matched
            ctx.stats["customers_updated"] += outcome.updated
        _upsert(integration.pk, records, customer_ids)
        _save_cursor(integration.pk, stream.name, page.cursor)
        ctx.stats["records_read"] += len(page.records)
        ctx.sync_request_stats()
        SyncRun.objects.filter(pk=ctx.run.pk).update(stats=ctx.stats, heartbeat_at=timezone.now())


def _records_by_key(
    integration_id: str, key: str, values: list[str], leading: tuple[str, ...]
) -> list[tuple]:
    """The integration's records whose `key` column is one of `values`: (*leading, stream, data)."""
    return probe(
        table=SyncedRecord._meta.db_table,
        columns=(*leading, "stream", "data"),
        scope=("integration_id", integration_id),
        key=key,
        values=values,
        json_column="data",
    )


def _customers_to_rescore(integration: Integration):
    """Customers linked to an account whose own record or any child changed since last time."""
    records = SyncedRecord.objects.filter(integration_id=integration.pk)
    changed = records
    if integration.signals_computed_at is not None:
        changed = records.filter(synced_at__gte=integration.signals_computed_at)
    parents = changed.filter(parent_id__isnull=False).values("parent_id")
    return (
        records.filter(customer__isnull=False)
        .filter(Q(pk__in=changed.filter(customer__isnull=False).values("pk")) | Q(provider_id__in=parents))
        .values_list("customer_id", flat=True)
        .distinct()
    )


def write_signals(ctx: RunContext) -> None:
    from health.services import external_signals_upsert_many

    integration = ctx.integration
    started = timezone.now()
    customer_ids = list(_customers_to_rescore(integration))
    for offset in range(0, len(customer_ids), SIGNAL_BATCH):
        batch = customer_ids[offset : offset + SIGNAL_BATCH]
        accounts = _records_by_key(integration.pk, "customer_id", batch, ("customer_id", "provider_id"))
        owner = {provider_id: customer_id for customer_id, provider_id, _, _ in accounts}
        grouped: dict[str, dict[str, list[dict]]] = {cid: {} for cid in batch}
        for customer_id, _, stream, data in accounts:
            grouped[customer_id].setdefault(stream, []).append(data)
        for parent_id, stream, data in _records_by_key(
            integration.pk, "parent_id", list(owner), ("parent_id",)
        ):
            grouped[owner[parent_id]].setdefault(stream, []).append(data)
        signals = {cid: build_signals(integration.provider, streams) for cid, streams in grouped.items()}
        _record_outcomes(integration, grouped)
        # One batch per page: a constant number of queries and one rescore of its customers.
        ctx.stats["signals_written"] += external_signals_upsert_many(
            workspace_id=integration.workspace_id, source=ctx.connector.signal_source, signals=signals
        )
    Integration.objects.filter(pk=integration.pk).update(signals_computed_at=started)


def _record_outcomes(integration: Integration, grouped: dict[str, dict[str, list[dict]]]) -> None:
    """Churns and win-backs the provider's records show (integrations/outcomes.py), through the
    customers' own service: one read for the batch, a write only where the state changes."""
    from customers.services import customer_outcome_record

    build = OUTCOME_BUILDERS.get(integration.provider)
    if build is None:
        return
    churned = dict(Customer.objects.filter(pk__in=list(grouped)).values_list("pk", "churned_at"))
    for customer_id, streams in grouped.items():
        if customer_id not in churned:
            continue  # deleted since the link was made
        outcome = build(streams, churned[customer_id])
        if outcome is None:
            continue
        kind, at = outcome
        try:
            customer_outcome_record(
                workspace_id=integration.workspace_id,
                customer_id=customer_id,
                kind=kind,
                at=at,
                source=integration.provider,
            )
        except ApiError:  # a 404: the customer was deleted since the read above
            continue


def claim(sync_run_id: str) -> bool:
    """queued -> running with a conditional UPDATE: exactly one worker gets a row count of 1."""
    now = timezone.now()
    return bool(
        SyncRun.objects.filter(pk=sync_run_id, status=SyncStatus.QUEUED).update(
            status=SyncStatus.RUNNING, started_at=now, heartbeat_at=now
        )
    )


def execute(sync_run_id: str) -> str:
    if not claim(sync_run_id):
        return "not claimed"
    run = SyncRun.objects.select_related("integration").get(pk=sync_run_id)
    integration = run.integration
    if integration.status == IntegrationStatus.DISCONNECTED or not integration.credentials_encrypted:
        finish(run, SyncStatus.FAILED, "The integration is disconnected.", None, empty_stats())
        return "disconnected"
    Integration.objects.filter(pk=integration.pk).exclude(status=IntegrationStatus.DISCONNECTED).update(
        status=IntegrationStatus.SYNCING, updated_at=timezone.now()
    )
    connector = connector_for(integration.provider, decrypt_json(integration.credentials_encrypted))
    ctx = RunContext(run, integration, connector)
    failures: list[str] = []
    streams: list[Stream] = []
    try:
        cursors = dict(
            StreamState.objects.filter(integration_id=integration.pk).values_list("stream", "cursor")
        )
        streams = connector.streams(cursors)
        for stream in streams:
            try:
                for page in stream.read(cursors.get(stream.name) or {}):
                    commit_page(ctx, stream, page)
            except (ProviderAuthError, SyncCancelled):
                raise
            except ProviderError as exc:
                failures.append(f"{stream.name}: {exc.reason}")
            except Exception as exc:
                logger.exception("sync %s: stream %s crashed", run.pk, stream.name)
                failures.append(f"{stream.name}: internal error ({exc.__class__.__name__})")
        if len(failures) < len(streams):
            write_signals(ctx)
    except ProviderAuthError as exc:
        ctx.sync_request_stats()
        finish(run, SyncStatus.FAILED, exc.reason, IntegrationStatus.NEEDS_REAUTH, ctx.stats)
        return "needs_reauth"
    except SyncCancelled:
        ctx.sync_request_stats()
        finish(run, SyncStatus.FAILED, "The integration was disconnected; the sync stopped.", None, ctx.stats)
        return "cancelled"
    finally:
        connector.close()
    ctx.sync_request_stats()
    if not failures:
        finish(run, SyncStatus.SUCCEEDED, None, IntegrationStatus.ACTIVE, ctx.stats)
        return "succeeded"
    status = SyncStatus.PARTIAL if len(failures) < len(streams) else SyncStatus.FAILED
    integration_status = IntegrationStatus.ACTIVE if status == SyncStatus.PARTIAL else IntegrationStatus.ERROR
    finish(run, status, "; ".join(failures), integration_status, ctx.stats)
    return status


def finish(run: SyncRun, status: str, error: str | None, integration_status: str | None, stats: dict) -> None:
    from integrations.api.serializers import sync_run_representation
    from webhooks.services import webhook_event_publish

    now = timezone.now()
    with transaction.atomic():
        integration = Integration.objects.select_for_update().get(pk=run.integration_id)
        run.status, run.finished_at, run.stats = status, now, stats
        run.error = mask_secrets(error)[:2000] if error else None
        run.save(update_fields=["status", "finished_at", "stats", "error"])
        if integration.status != IntegrationStatus.DISCONNECTED and integration_status:
            integration.status = integration_status
            if status in (SyncStatus.SUCCEEDED, SyncStatus.PARTIAL):
                integration.last_synced_at = now
            interval = config_value(integration, "sync_interval_minutes")
            reauth = integration_status == IntegrationStatus.NEEDS_REAUTH
            integration.next_sync_at = None if reauth else now + timedelta(minutes=interval)
            integration.updated_at = now
            integration.save(update_fields=["status", "last_synced_at", "next_sync_at", "updated_at"])
        webhook_event_publish(
            workspace_id=run.workspace_id,
            event_type="integration.sync_succeeded"
            if status == SyncStatus.SUCCEEDED
            else "integration.sync_failed",
            data_object=sync_run_representation(run),
        )
