"""The score math, and the signal objects it produces.

score = sum(w_i * s_i) / sum(w_i) over the signals present (absent signals' weights are left
out, not counted as zero); contribution_i = w_i * s_i / sum(w_i), rounded to 2 decimals, and the
score is the sum of the rounded contributions so that they add up to it exactly, except that it
never exceeds 100: at or near full marks the half-up roundings can add up to 100.01 or more (six
equal weights at 100 give 6 x 16.67), and the score then reads 100. confidence is the share of
the model's total weight that had data.

health.rescore_sql computes it; tests/health/oracle.py is its Python reference. Every sum runs in
signal-key order and every rounding is health.rounding.round_half_up.
"""

from __future__ import annotations

from datetime import datetime

from health.signals import CATALOG


def signal_object(raw: dict, *, source: str, computed_at: datetime | str) -> dict:
    definition = CATALOG.get(raw["key"])
    return {
        "key": raw["key"],
        "category": raw.get("category") or (definition.category if definition else ""),
        "label": raw.get("label") or (definition.label if definition else raw["key"]),
        "value": raw.get("value"),
        "unit": raw.get("unit") if raw.get("unit") is not None else (definition.unit if definition else ""),
        "score": float(raw["score"]),
        "source": source,
        "computed_at": computed_at,
    }
