"""Six weeks of product events for the demo customers, stored through the ingestion service.

Five usage profiles give the health scores a real spread: power users (several people, many
event types, daily), steady accounts, occasional accounts (one or two people, a few days a
week), fading accounts and accounts gone quiet. Fading is gradual, the way real accounts go
quiet: from a day of its own (three to six weeks ago) the account is used less each day, on fewer
days, by fewer of its people and for fewer things, down to a level of its own (from nothing to
40% of what it was). Quiet accounts stopped 12 to 40 days
ago; a churned customer is always one of them, silent for 25 to 40 days.
"""

from __future__ import annotations

import random
from datetime import timedelta

from django.utils import timezone

from customers.models import Customer
from events.services import event_batch_ingest
from events.validation import MAX_BATCH
from perly.models import Workspace
from perly.timestamps import iso

DAYS = 42
_CORE_TYPES = ["login", "dashboard.viewed", "report.viewed"]
_RICH_TYPES = [
    "report.exported",
    "seat.invited",
    "feature.used",
    "integration.connected",
    "api.call",
    "alert.configured",
    "billing.viewed",
    "comment.created",
]
_FEATURES = ["forecasting", "segments", "playbooks", "exports", "sso", "custom_fields"]
# (profile, share of customers, events per active user per weekday, users, share of days active)
_PROFILES = [
    ("power", 0.15, 9, (4, 9), 0.95),
    ("steady", 0.15, 5, (2, 4), 0.85),
    ("occasional", 0.15, 2.5, (1, 3), 0.4),
    ("fading", 0.35, 7, (2, 5), 0.85),
    ("quiet", 0.2, 5, (1, 3), 0.8),
]


def _profile_for(rng: random.Random, customer: Customer) -> tuple:
    roll, total = rng.random(), 0.0
    if customer.lifecycle_stage == "churned":
        return _PROFILES[-1]
    for profile in _PROFILES:
        total += profile[1]
        if roll < total:
            return profile
    return _PROFILES[-1]


def _fade(days_ago: int, start: int, floor: float) -> float:
    """1 until `start` days ago, then down linearly to `floor` today."""
    if days_ago >= start:
        return 1.0
    return floor + (1.0 - floor) * days_ago / start


def _events_for(rng: random.Random, customer: Customer, now) -> list[dict]:
    name, _, per_user, (min_users, max_users), active_share = _profile_for(rng, customer)
    users = [f"user_{rng.randint(100, 999)}" for _ in range(rng.randint(min_users, max_users))]
    types = _CORE_TYPES + (_RICH_TYPES if name == "power" else rng.sample(_RICH_TYPES, 3))
    quiet_since = 0
    if name == "quiet":
        quiet_since = rng.randint(25, 40) if customer.lifecycle_stage == "churned" else rng.randint(12, 40)
    # Where a fading account ends up is spread evenly from nothing to 40% of what it was.
    fade_start, fade_floor = rng.randint(21, DAYS), rng.random() * 0.4
    events = []
    for days_ago in range(DAYS, 0, -1):
        if quiet_since and days_ago < quiet_since:
            break
        level = _fade(days_ago, fade_start, fade_floor) if name == "fading" else 1.0
        day = now - timedelta(days=days_ago)
        if rng.random() > active_share * level**2:
            continue
        rate = per_user * (0.3 if day.weekday() >= 5 else 1.0) * level
        # Fewer people and fewer kinds of use as an account fades.
        active_users = users[: max(1, round(len(users) * level))]
        day_types = types[: max(1, round(len(types) * level))]
        for user in active_users:
            for _ in range(max(0, round(rng.gauss(rate, rate / 3)))):
                moment = day.replace(
                    hour=rng.randint(7, 19), minute=rng.randint(0, 59), second=rng.randint(0, 59)
                )
                event_type = rng.choice(day_types)
                properties: dict = {"user_id": user}
                if event_type == "feature.used":
                    properties["feature"] = rng.choice(_FEATURES)
                elif event_type == "report.exported":
                    properties["format"] = rng.choice(["csv", "pdf", "xlsx"])
                    properties["rows"] = rng.randint(10, 50_000)
                events.append(
                    {
                        "customer_id": customer.id,
                        "type": event_type,
                        "timestamp": iso(moment),
                        "properties": properties,
                        "idempotency_key": f"demo-{customer.id}-{len(events)}",
                    }
                )
    return events


def seed(workspace: Workspace) -> int:
    rng = random.Random(7)  # the same demo every time
    now = timezone.now().replace(microsecond=0)
    pending: list[dict] = []
    stored = 0
    for customer in Customer.objects.filter(workspace_id=workspace.id).order_by("external_id", "id"):
        pending.extend(_events_for(rng, customer, now))
        while len(pending) >= MAX_BATCH:
            stored += event_batch_ingest(workspace_id=workspace.id, events=pending[:MAX_BATCH]).accepted
            del pending[:MAX_BATCH]
    if pending:
        stored += event_batch_ingest(workspace_id=workspace.id, events=pending).accepted
    return stored
