"""Demo billing for `manage.py seed_demo`: the signals a Stripe sync would have left for the demo
customers (MRR by plan, subscription status, a few past-due invoices), built by the same
integrations.signals code a real sync uses. No integration is created: connecting one is left to
the person trying the demo."""

from __future__ import annotations

import random
import time

from customers.models import Customer
from health.services import external_signals_upsert_many
from integrations.signals import DAY, stripe_signals
from perly.models import Workspace

# Monthly price range per plan, in cents.
_PRICES = {
    "starter": (4_900, 14_900),
    "growth": (39_000, 120_000),
    "business": (150_000, 400_000),
    "enterprise": (600_000, 2_000_000),
}


def _streams(rng: random.Random, customer: Customer, now: float) -> dict[str, list[dict]]:
    low, high = _PRICES.get(customer.plan or "", _PRICES["starter"])
    amount = rng.randrange(low, high, 100)
    if customer.lifecycle_stage == "churned":
        status = "canceled"
    elif customer.lifecycle_stage == "trial":
        status = "trialing"
    else:
        status = "past_due" if rng.random() < 0.12 else "active"
    item = {"quantity": 1, "unit_amount": amount, "currency": "usd", "interval": "month", "interval_count": 1}
    invoices = [{"status": "paid", "amount_remaining": 0, "created": now - 20 * DAY, "currency": "usd"}]
    if status == "past_due":
        invoices.append(
            {
                "status": "open",
                "amount_remaining": amount,
                "due_date": now - 10 * DAY,
                "attempt_count": rng.randint(1, 3),
                "attempted": True,
                "created": now - 15 * DAY,
                "currency": "usd",
            }
        )
    return {"subscriptions": [{"status": status, "items": [item]}], "invoices": invoices, "charges": []}


def seed(workspace: Workspace) -> int:
    rng = random.Random(11)  # the same demo every time
    now = time.time()
    customers = Customer.objects.filter(workspace_id=workspace.id, plan__isnull=False).order_by("external_id")
    signals = {customer.id: stripe_signals(_streams(rng, customer, now), now) for customer in customers}
    return external_signals_upsert_many(workspace_id=workspace.id, source="stripe", signals=signals)
