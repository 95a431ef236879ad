"""The churn labels that cohorts and backtests are measured on, defined once.

At an observation moment `end` (the end of a day) with a horizon:
- a customer counts only if it is live then: no churn outcome at or before `end` that no
  reactivation followed by `end`;
- its label is whether a churn outcome falls in (`end`, `end + horizon`].

The SQL fragments read the parameters %(end)s and %(horizon_end)s (see `label_params`) and take
the column that holds the customer id.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from customers.models import Outcome

_OUTCOMES = Outcome._meta.db_table


def churned_within_horizon(customer_column: str) -> str:
    return (
        f'EXISTS (SELECT 1 FROM "{_OUTCOMES}" o WHERE o.customer_id = {customer_column} '  # noqa: S608
        "AND o.kind = 'churned' AND o.at > %(end)s AND o.at <= %(horizon_end)s)"
    )


def live_at_end(customer_column: str) -> str:
    return (
        f'NOT EXISTS (SELECT 1 FROM "{_OUTCOMES}" o WHERE o.customer_id = {customer_column} '  # noqa: S608
        "AND o.kind = 'churned' AND o.at <= %(end)s "
        f'AND NOT EXISTS (SELECT 1 FROM "{_OUTCOMES}" r WHERE r.customer_id = o.customer_id '
        "AND r.kind = 'reactivated' AND r.at > o.at AND r.at <= %(end)s))"
    )


def label_params(end: datetime, horizon_days: int) -> dict:
    return {"end": end, "horizon_end": end + timedelta(days=horizon_days)}
