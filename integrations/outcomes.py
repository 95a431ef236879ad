"""Churn and win-back read from a provider's records (Stripe subscriptions), for
customers.services.customer_outcome_record.

A customer churns when its last live subscription ends, at Stripe's `ended_at` (the latest one,
when several ended); a live subscription created after the churn is a reactivation, at its
`created`. Statuses (Stripe's subscription object): `trialing`, `active`, `past_due`, `unpaid`
and `paused` are live (the customer is still in a billing relationship); `canceled` has ended;
`incomplete` (first payment pending) and `incomplete_expired` (never paid) are neither, so they
neither keep a customer nor churn one.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

LIVE_STATUSES = frozenset({"trialing", "active", "past_due", "unpaid", "paused"})
ENDED_STATUSES = frozenset({"canceled"})

Outcome = tuple[str, datetime]  # (OutcomeKind, at)


def _at(epoch) -> datetime | None:
    if not isinstance(epoch, int | float) or isinstance(epoch, bool) or epoch <= 0:
        return None
    return datetime.fromtimestamp(epoch, tz=UTC)


def stripe_outcome(streams: dict[str, list[dict]], churned_at: datetime | None) -> Outcome | None:
    """What the customer's subscriptions say happened, given its current churned_at; None when
    they agree with it (or say nothing: a customer without subscriptions is not a churn)."""
    subscriptions = streams.get("subscriptions") or []
    if not subscriptions:
        return None
    live = [s for s in subscriptions if s.get("status") in LIVE_STATUSES]
    if live:
        if churned_at is None:
            return None
        # Live since before the churn: that churn was recorded elsewhere (by hand); leave it.
        started = [at for s in live if (at := _at(s.get("created"))) is not None and at > churned_at]
        return ("reactivated", min(started)) if started else None
    if churned_at is not None:
        return None
    ended = [
        at for s in subscriptions if s.get("status") in ENDED_STATUSES and (at := _at(s.get("ended_at")))
    ]
    return ("churned", max(ended)) if ended else None


OUTCOME_BUILDERS: dict[str, Callable[[dict[str, list[dict]], datetime | None], Outcome | None]] = {
    "stripe": stripe_outcome,
}
