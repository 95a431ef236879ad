"""The staff health dashboard's data: a workspace segment's summary and its at-risk table (owner,
plan, MRR, score now and 7 days ago, when it dropped, and each customer's own weakest signals)."""

from __future__ import annotations

from datetime import date

from customers.models import Customer
from health import insights, selectors
from health.models import CustomerHealth, ExternalSignal, HealthModel
from health.representation import BREAKDOWN_FIELDS, stored_signals

SEGMENT_FIELDS = ("plan", "owner", "lifecycle_stage")
EXPORT_MAX_ROWS = 10_000


def segment_choices(*, workspace_id: str) -> dict[str, list[str]]:
    """The values each segment filter offers: those the workspace's customers have."""
    customers = Customer.objects.filter(workspace_id=workspace_id)
    return {
        name: sorted(
            value
            for value in customers.exclude(**{f"{name}__isnull": True})
            .values_list(name, flat=True)
            .distinct()
            .order_by()
            if value
        )
        for name in SEGMENT_FIELDS
    }


def at_risk_table(
    *,
    workspace_id: str,
    model: HealthModel,
    segment: dict,
    limit: int,
    cursor: tuple[float, str] | None = None,
) -> tuple[list[dict], bool]:
    """One page of at-risk rows, lowest score first; returns (rows, has_more)."""
    customers, has_more = selectors.at_risk_page(
        workspace_id=workspace_id,
        threshold=model.at_risk_threshold,
        dropped_after=None,
        limit=limit,
        cursor=cursor,
        segment=segment,
    )
    rows = selectors.at_risk_rows(customers=customers, threshold=model.at_risk_threshold)
    ids = [customer.id for customer in customers]
    breakdowns = {
        row["customer_id"]: stored_signals(row)
        for row in CustomerHealth.objects.filter(customer_id__in=ids).values("customer_id", *BREAKDOWN_FIELDS)
    }
    mrr = {
        row["customer_id"]: row
        for row in ExternalSignal.objects.filter(customer_id__in=ids, key=insights.MRR_KEY).values(
            "customer_id", "value", "unit"
        )
    }
    medians = insights.signal_medians(workspace_id=workspace_id) if customers else {}
    for customer, row in zip(customers, rows, strict=True):
        billing = mrr.get(customer.id) or {}
        row.update(
            owner=customer.owner,
            plan=customer.plan,
            lifecycle_stage=customer.lifecycle_stage,
            mrr=billing.get("value"),
            mrr_unit=billing.get("unit"),
            dropped_on=date.fromisoformat(row["dropped_at"][:10]) if row["dropped_at"] else None,
            weakest=insights.weakest_against_median(breakdowns.get(customer.id, []), medians),
        )
    return rows, has_more


def at_risk_export(*, workspace_id: str, model: HealthModel, segment: dict) -> list[dict]:
    """Every at-risk row of the segment (at most EXPORT_MAX_ROWS), page by page."""
    out: list[dict] = []
    cursor = None
    while len(out) < EXPORT_MAX_ROWS:
        rows, has_more = at_risk_table(
            workspace_id=workspace_id, model=model, segment=segment, limit=500, cursor=cursor
        )
        out.extend(rows)
        if not has_more or not rows:
            break
        cursor = (rows[-1]["score"], rows[-1]["customer"]["id"])
    return out[:EXPORT_MAX_ROWS]
