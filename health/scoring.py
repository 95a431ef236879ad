"""The score math, pure and without queries.

score = sum(w_i * s_i) / sum(w_i) over the signals present (absent signals' weights are left
out, not counted as zero); contribution_i = w_i * s_i / sum(w_i), rounded to 2 decimals, and the
score is the sum of the rounded contributions so that they add up to it exactly. confidence is
the share of the model's total weight that had data.

PostgreSQL computes the same math in SQL (health.rescore_sql). For the two to agree to the last
bit, every sum runs in signal-key order and every rounding is health.rounding.round_half_up.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from health.rounding import round_half_up
from health.signals import CATALOG


@dataclass(frozen=True)
class ScoreResult:
    score: float | None
    confidence: float
    signals: list[dict]  # catalog fields + value, score, weight, contribution, source, computed_at


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


def compute_score(signals: list[dict], weights: dict[str, float]) -> ScoreResult:
    """`signals` are signal objects; returns them sorted by key with weight and contribution."""
    total_weight = sum(weight for weight in weights.values() if weight > 0)
    ordered = sorted(signals, key=lambda item: item["key"])
    present = sum(float(weights.get(signal["key"], 0.0)) for signal in ordered)  # key order, as in SQL
    breakdown = []
    score_sum = 0.0
    for signal in ordered:
        weight = float(weights.get(signal["key"], 0.0))
        contribution = round_half_up(weight * signal["score"] / present, 2) if present > 0 else 0.0
        score_sum += contribution
        breakdown.append({**signal, "weight": weight, "contribution": contribution})
    if present <= 0:
        return ScoreResult(score=None, confidence=0.0, signals=breakdown)
    confidence = round_half_up(present / total_weight, 4) if total_weight > 0 else 0.0
    return ScoreResult(score=round_half_up(score_sum, 2), confidence=confidence, signals=breakdown)
