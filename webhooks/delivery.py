"""Delivering one message: claim it, sign it, POST it, record the attempt, decide what next.

Retry policy. A 2xx answer delivers the message. 410 Gone disables the endpoint. 429, 5xx,
timeouts and connection errors are retried on RETRY_SCHEDULE_SECONDS (±10% jitter, and never
sooner than a Retry-After asks); after the last step the message is `failed`. Anything else
(3xx, which is never followed, other 4xx, an address the SSRF policy refuses) fails at once.
Short delays go back to the broker as a countdown; longer ones live only in the database
(`next_attempt_at`), where the sweeper finds them: a Redis broker cannot hold a task for hours
(its visibility timeout would redeliver it). An endpoint whose attempts have all failed for
five days is disabled.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from webhooks import client
from webhooks.models import (
    AttemptOutcome,
    MessageStatus,
    WebhookAttempt,
    WebhookEndpoint,
    WebhookMessage,
)
from webhooks.services import endpoint_secrets, enqueue_messages, webhook_endpoint_set_status
from webhooks.signing import signature_header

logger = logging.getLogger("perly.webhooks")

# 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h: eight attempts over about 28 hours.
RETRY_SCHEDULE_SECONDS: tuple[int, ...] = (5, 5 * 60, 30 * 60, 2 * 3600, 5 * 3600, 10 * 3600, 10 * 3600)
RETRY_JITTER = 0.10
# Retries due within this go through a broker countdown; later ones through the database.
COUNTDOWN_MAX_SECONDS = 60
# How long a worker owns a claimed message (well above the 15 s connect + 15 s read timeouts).
CLAIM_LEASE = timedelta(seconds=120)
# A queued task that has not run this long after its due time is presumed lost and queued again.
REQUEUE_AFTER = timedelta(minutes=5)
FAILING_DISABLE_AFTER = timedelta(days=5)
SWEEP_BATCH = 500


def retry_delay(step: int, rng: random.Random | None = None) -> float | None:
    """Seconds before automatic retry number `step` (0-based), or None when none are left."""
    if step >= len(RETRY_SCHEDULE_SECONDS):
        return None
    jitter = (rng or random).uniform(-RETRY_JITTER, RETRY_JITTER)
    return RETRY_SCHEDULE_SECONDS[step] * (1 + jitter)


def webhook_message_deliver(*, message_id: str) -> str:
    """Make one attempt at a due message, holding no transaction and no row lock across the POST.

    The claim is one autocommit UPDATE that leases the row (`locked_until`) and reads what the
    attempt needs; the POST runs with nothing open; the record is one autocommit statement that
    stores the attempt and the message's new state, guarded by the lease. A worker killed
    mid-attempt leaves a lease that simply expires, and the sweeper queues the message again:
    delivery is at-least-once."""
    now = timezone.now()
    lease = now + CLAIM_LEASE
    row = _returning_row(
        _claim_sql(), [lease, message_id, MessageStatus.PENDING, now + timedelta(seconds=1), now]
    )
    if row is None:
        return SKIPPED
    split = len(_MESSAGE_COLUMNS)
    message = WebhookMessage.from_db(connection.alias, _MESSAGE_COLUMNS, row[:split])
    message.endpoint = WebhookEndpoint.from_db(connection.alias, _ENDPOINT_COLUMNS, row[split:-1])
    try:
        return _attempt(message, lambda decision: _record(decision, lease))
    except BaseException:
        # Interrupted (a soft time limit, a bug): give the message back at once rather than when
        # the lease runs out. A killed worker cannot do this; its lease expires instead.
        WebhookMessage.objects.filter(pk=message.pk, locked_until=lease).update(locked_until=None)
        raise


SKIPPED = "skipped: not due or claimed elsewhere"

_MESSAGE_COLUMNS = ("id", "endpoint_id", "payload", "attempt_count", "retry_step")
_ENDPOINT_COLUMNS = (
    "id",
    "workspace_id",
    "url",
    "active",
    "status",
    "secret_encrypted",
    "previous_secret_encrypted",
    "previous_secret_expires_at",
    "failing_since",
)
# Delivery bookkeeping (claims, attempts) does not wait for the WAL flush: losing its last
# instants in a database crash can only make a message look undelivered, so it is sent again,
# which at-least-once delivery allows. The outbox rows themselves are written durably by the
# caller. Set per statement: each runs in its own implicit transaction.
_RELAXED_COMMIT = "set_config('synchronous_commit', 'off', true)"


def _claim_sql() -> str:
    """The lease, written out: the ORM cannot express UPDATE ... FROM ... RETURNING over a join.
    The row is picked with SKIP LOCKED, so a claim never waits behind another transaction."""
    message_table = WebhookMessage._meta.db_table
    endpoint_table = WebhookEndpoint._meta.db_table
    columns = [f"m.{c}" for c in _MESSAGE_COLUMNS] + [f"e.{c}" for c in _ENDPOINT_COLUMNS]
    return (
        f"UPDATE {message_table} m SET locked_until = %s FROM {endpoint_table} e "  # noqa: S608 (our own identifiers only)
        f"WHERE m.id = (SELECT id FROM {message_table} WHERE id = %s AND status = %s "
        "AND next_attempt_at <= %s AND (locked_until IS NULL OR locked_until < %s) "
        "FOR UPDATE SKIP LOCKED) "
        f"AND e.id = m.endpoint_id RETURNING {', '.join(columns)}, {_RELAXED_COMMIT}"
    )


def _returning_row(sql: str, params: list) -> tuple | None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()


@dataclass
class _Decision:
    """What one attempt leaves behind: the attempt row, the message's new state, the follow-ups
    that must wait for the commit, and the task's short outcome string."""

    message: WebhookMessage
    attempt: dict
    update: dict
    after_commit: list[Callable[[], object]] = field(default_factory=list)
    summary: str = ""
    # Whether the attempt delivered, for the endpoint's failure tracking (None: no attempt made).
    delivered: bool | None = None

    def track_endpoint_health(self) -> None:
        """Inside the write's transaction: the endpoint's run of failures (see below)."""
        if self.delivered is not None:
            self.after_commit += _track_endpoint_health(
                self.message.endpoint, delivered=self.delivered, now=self.attempt["created_at"]
            )


def _attempt(message: WebhookMessage, write: Callable[[_Decision], None]) -> str:
    """Sign, send and record one attempt; `write` stores the decision, then the follow-ups are
    registered for after the commit (at once in autocommit, as in a worker)."""
    endpoint = message.endpoint
    if not endpoint.deliverable:
        decision = _Decision(
            message,
            attempt={},
            update={
                "status": MessageStatus.FAILED,
                "last_error": "The endpoint is disabled or inactive.",
                "locked_until": None,
            },
            summary="failed: endpoint disabled",
        )
    else:
        body = message.payload.encode()
        timestamp = int(time.time())  # fresh per attempt, as Standard Webhooks requires
        headers = {
            "Content-Type": "application/json",
            "webhook-id": message.id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": signature_header(endpoint_secrets(endpoint), message.id, timestamp, body),
        }
        result = client.post(endpoint.url, body, headers)
        decision = _decide(message, endpoint, result)
    write(decision)
    for callback in decision.after_commit:
        transaction.on_commit(callback)
    return decision.summary


def _classify(result: client.HttpResult) -> str:
    code = result.status_code
    if code is not None and 200 <= code < 300:
        return "delivered"
    if code == 410:
        return "gone"
    if code == 429 or (code is not None and code >= 500) or result.kind in ("timeout", "connection_error"):
        return "retry"
    return "failed"


def _error_text(result: client.HttpResult) -> str | None:
    if result.error:
        return result.error
    code = result.status_code
    if code is not None and 300 <= code < 400:
        return f"redirect not followed (HTTP {code} to {result.location or 'no Location'})"[:500]
    if code is not None and not 200 <= code < 300:
        return f"HTTP {code}"
    return None


def _decide(message: WebhookMessage, endpoint: WebhookEndpoint, result: client.HttpResult) -> _Decision:
    now = timezone.now()
    verdict = _classify(result)
    error = _error_text(result)
    attempt_number = message.attempt_count + 1
    update: dict = {"attempt_count": attempt_number, "locked_until": None, "last_error": error}
    after_commit: list[Callable[[], object]] = []
    if verdict == "delivered":
        outcome = AttemptOutcome.DELIVERED
        update.update(status=MessageStatus.DELIVERED, delivered_at=now, enqueued_at=None)
    elif verdict == "gone":
        outcome = AttemptOutcome.ENDPOINT_DISABLED
        update.update(status=MessageStatus.FAILED, enqueued_at=None)
        after_commit.append(
            lambda: webhook_endpoint_set_status(
                endpoint_id=endpoint.pk, enabled=False, reason="The endpoint answered 410 Gone."
            )
        )
    elif verdict == "retry" and (delay := retry_delay(message.retry_step)) is not None:
        outcome = AttemptOutcome.RETRYING
        delay = max(delay, result.retry_after or 0)
        due = now + timedelta(seconds=delay)
        short = delay <= COUNTDOWN_MAX_SECONDS
        update.update(
            retry_step=message.retry_step + 1, next_attempt_at=due, enqueued_at=due if short else None
        )
        if short:
            after_commit.insert(0, lambda: enqueue_messages([message.pk], countdown=delay))
    else:
        outcome = AttemptOutcome.FAILED
        update.update(status=MessageStatus.FAILED, enqueued_at=None)

    # Written in one transaction (see `write`): the attempt, the message and the endpoint move together.
    attempt = {
        "message_id": message.pk,
        "attempt_number": attempt_number,
        "outcome": outcome,
        "status_code": result.status_code,
        "duration_ms": result.duration_ms,
        "response_body": result.body,
        "error": error,
        "created_at": now,
    }
    code = f", HTTP {result.status_code}" if result.status_code else ""
    summary = f"{outcome} (attempt {attempt_number}{code})"
    return _Decision(message, attempt, update, after_commit, summary, delivered=verdict == "delivered")


def _record(decision: _Decision, lease: datetime) -> None:
    """The attempt INSERT and the message UPDATE as one autocommit statement (a data-modifying
    CTE). The update applies only while this worker's lease holds: if it expired and another
    worker claimed the message meanwhile, that worker's outcome is the one kept."""
    decision.track_endpoint_health()  # usually no statement (only when the failure state changes)
    message_meta = WebhookMessage._meta
    assignments = [f"{message_meta.get_field(name).column} = %s" for name in decision.update]
    params = list(decision.update.values())
    sql = (
        f"UPDATE {message_meta.db_table} SET {', '.join(assignments)} "  # noqa: S608
        f"WHERE id = %s AND locked_until = %s RETURNING {_RELAXED_COMMIT}"
    )
    if decision.attempt:
        columns = ", ".join(decision.attempt)
        placeholders = ", ".join(["%s"] * len(decision.attempt))
        sql = (
            f"WITH attempt AS (INSERT INTO {WebhookAttempt._meta.db_table} ({columns}) "  # noqa: S608
            f"VALUES ({placeholders})) {sql}"
        )
        params = list(decision.attempt.values()) + params
    _returning_row(sql, [*params, decision.message.pk, lease])


def _track_endpoint_health(
    endpoint: WebhookEndpoint, *, delivered: bool, now: datetime
) -> list[Callable[[], object]]:
    """Remember when the current run of failures began; five days of nothing but failures
    disables (returned as a follow-up for after the commit)."""
    if delivered:
        if endpoint.failing_since is not None:
            WebhookEndpoint.objects.filter(pk=endpoint.pk).update(failing_since=None)
        return []
    if endpoint.failing_since is None:
        WebhookEndpoint.objects.filter(pk=endpoint.pk, failing_since__isnull=True).update(failing_since=now)
    elif endpoint.failing_since <= now - FAILING_DISABLE_AFTER:
        return [
            lambda: webhook_endpoint_set_status(
                endpoint_id=endpoint.pk,
                enabled=False,
                reason="Every delivery attempt has failed for 5 days.",
            )
        ]
    return []


# --- The sweeper -------------------------------------------------------------------------------


def _due(now: datetime):
    return WebhookMessage.objects.filter(
        Q(enqueued_at__isnull=True) | Q(enqueued_at__lt=now - REQUEUE_AFTER),
        Q(locked_until__isnull=True) | Q(locked_until__lt=now),
        status=MessageStatus.PENDING,
        next_attempt_at__lte=now,
    )


def _take_due(now: datetime, limit: int) -> list[str]:
    """Mark up to `limit` due messages as queued and return their ids; concurrent sweepers never
    take the same row (row locks are skipped, not waited for)."""
    with transaction.atomic():
        ids = list(
            _due(now)
            .select_for_update(skip_locked=True)
            .order_by("next_attempt_at")
            .values_list("id", flat=True)[:limit]
        )
        WebhookMessage.objects.filter(pk__in=ids).update(enqueued_at=now)
    return ids


def webhook_messages_sweep(*, limit: int = SWEEP_BATCH) -> int:
    """Queue every due message nobody has queued (broker was down, a retry's long delay is over,
    a worker died mid-task). Runs on beat; returns how many it queued."""
    ids = _take_due(timezone.now(), limit)
    if not ids:
        return 0
    return enqueue_messages(ids)


def webhook_messages_prune(*, older_than: timedelta = timedelta(days=30), batch: int = 1000) -> int:
    """Delete finished messages (and their attempts) older than the retention window, in batches."""
    cutoff = timezone.now() - older_than
    total = 0
    while True:
        ids = list(
            WebhookMessage.objects.filter(created_at__lt=cutoff)
            .exclude(status=MessageStatus.PENDING)
            .values_list("id", flat=True)[:batch]
        )
        if not ids:
            return total
        WebhookMessage.objects.filter(pk__in=ids).delete()
        total += len(ids)
