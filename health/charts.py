"""Server-rendered SVG for the admin (no external script): a score line and a histogram."""

from __future__ import annotations

from datetime import date, timedelta

from django.utils.html import escape, format_html
from django.utils.safestring import SafeString, mark_safe

_BANDS = ("#e8f5e9", "#fff8e1", "#ffebee")  # healthy, neutral, at risk
_TICKS = 6


def _tick_days(first: date, last: date) -> list[date]:
    """About six evenly spaced dates from first to last, both ends included."""
    span = (last - first).days
    if span == 0:
        return [first]
    step = max(1, round(span / (_TICKS - 1)))
    days = [first + timedelta(days=offset) for offset in range(0, span, step)]
    if (last - days[-1]).days < step / 2 and len(days) > 1:
        days.pop()  # too close to the last label to read
    return [*days, last]


def score_chart(
    points: list[tuple[date, float | None]],
    *,
    width: int = 640,
    height: int = 200,
    healthy: float = 70.0,
    at_risk: float = 40.0,
) -> SafeString:
    """Daily scores from the first snapshot to the last, with the status bands behind them,
    dated ticks, and a point per day whose <title> is its date and score (the hover text)."""
    points = sorted((day, score) for day, score in points)
    if not points:
        return format_html('<p class="perly-muted">{}</p>', "No score history yet.")
    first, last = points[0][0], points[-1][0]
    span = max((last - first).days, 1)
    left, right, top, bottom = 34, 12, 10, 26

    def x(day: date) -> float:
        if first == last:
            return left + (width - left - right) / 2
        return left + (width - left - right) * (day - first).days / span

    def y(score: float) -> float:
        return top + (height - top - bottom) * (100.0 - score) / 100.0

    parts = [
        f'<svg class="perly-chart" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'role="img" aria-label="Health score from {first.isoformat()} to {last.isoformat()}">'
    ]
    for color, low, high in (
        (_BANDS[0], healthy, 100),
        (_BANDS[1], at_risk, healthy),
        (_BANDS[2], 0, at_risk),
    ):
        parts.append(
            f'<rect class="perly-band" x="{left}" y="{y(high):.1f}" width="{width - left - right}" '
            f'height="{y(low) - y(high):.1f}" fill="{color}"/>'
        )
    for value in sorted({0.0, float(at_risk), float(healthy), 100.0}):
        parts.append(
            f'<text x="{left - 4}" y="{y(value) + 3:.1f}" font-size="10" fill="#666" text-anchor="end">'
            f"{value:g}</text>"
        )
    ticks = _tick_days(first, last)
    for index, day in enumerate(ticks):
        # The end labels align inwards so that they stay inside the chart.
        anchor = "start" if index == 0 and len(ticks) > 1 else "end" if index == len(ticks) - 1 else "middle"
        parts.append(
            f'<g class="perly-tick" data-date="{day.isoformat()}">'
            f'<line x1="{x(day):.1f}" x2="{x(day):.1f}" y1="{height - bottom}" y2="{height - bottom + 4}" '
            f'stroke="#999"/><text x="{x(day):.1f}" y="{height - 8}" font-size="10" fill="#666" '
            f'text-anchor="{anchor}">{escape(day.strftime("%b %-d"))}</text></g>'
        )
    segment: list[str] = []
    for day, score in points:
        if score is None:
            parts.append(_polyline(segment))
            segment = []
            continue
        segment.append(f"{x(day):.1f},{y(score):.1f}")
    parts.append(_polyline(segment))
    for day, score in points:
        if score is not None:
            parts.append(
                f'<circle class="perly-point" cx="{x(day):.1f}" cy="{y(score):.1f}" r="3" fill="#1565c0">'
                f"<title>{day.isoformat()}: {score:.1f}</title></circle>"
            )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 (every dynamic part is a number or escaped)


def _polyline(segment: list[str]) -> str:
    if len(segment) < 2:
        return ""
    return f'<polyline fill="none" stroke="#1565c0" stroke-width="2" points="{" ".join(segment)}"/>'


def histogram(buckets: list[dict], *, width: int = 600, height: int = 180) -> SafeString:
    """Ten score buckets as bars, the count above each."""
    pad = 24
    top = max((bucket["count"] for bucket in buckets), default=0) or 1
    bar = (width - 2 * pad) / max(len(buckets), 1)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
        'aria-label="Score distribution">'
    ]
    for index, bucket in enumerate(buckets):
        h = (height - 2 * pad) * bucket["count"] / top
        left = pad + index * bar
        color = "#c62828" if bucket["max"] <= 40 else "#f9a825" if bucket["max"] <= 70 else "#2e7d32"
        parts.append(
            f'<rect x="{left + 2:.1f}" y="{height - pad - h:.1f}" width="{bar - 4:.1f}" '
            f'height="{h:.1f}" fill="{color}"/>'
        )
        parts.append(
            f'<text x="{left + bar / 2 - 8:.1f}" y="{height - pad - h - 3:.1f}" font-size="10">'
            f"{int(bucket['count'])}</text>"
        )
        parts.append(
            f'<text x="{left + 2:.1f}" y="{height - 6}" font-size="10" fill="#666">'
            f"{int(bucket['min'])}</text>"
        )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 (numbers only)


def cohort_chart(groups: list[dict], *, width: int = 600, height: int = 200) -> SafeString:
    """Churn rate per metric group (lowest values first) as bars, the 95% interval as whiskers."""
    pad = 28
    top = max((group["interval"]["high"] for group in groups), default=0.0) or 1.0
    bar = (width - 2 * pad) / max(len(groups), 1)

    def y(rate: float) -> float:
        return height - pad - (height - 2 * pad) * rate / top

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
        'aria-label="Churn rate by cohort">'
    ]
    for index, group in enumerate(groups):
        left = pad + index * bar
        middle = left + bar / 2
        rate, low, high = group["churn_rate"], group["interval"]["low"], group["interval"]["high"]
        parts.append(
            f'<rect class="cohort-bar" x="{left + 3:.1f}" y="{y(rate):.1f}" width="{bar - 6:.1f}" '
            f'height="{height - pad - y(rate):.1f}" fill="#1565c0"/>'
        )
        parts.append(
            f'<line class="cohort-whisker" x1="{middle:.1f}" x2="{middle:.1f}" y1="{y(low):.1f}" '
            f'y2="{y(high):.1f}" stroke="#212121" stroke-width="1.5"/>'
        )
        for edge in (low, high):
            parts.append(
                f'<line x1="{middle - 5:.1f}" x2="{middle + 5:.1f}" y1="{y(edge):.1f}" y2="{y(edge):.1f}" '
                'stroke="#212121" stroke-width="1.5"/>'
            )
        parts.append(
            f'<text x="{left + 3:.1f}" y="{y(high) - 4:.1f}" font-size="10">{100 * rate:.0f}%</text>'
        )
        parts.append(
            f'<text x="{left + 3:.1f}" y="{height - 8}" font-size="10" fill="#666">{group["min"]:.4g}</text>'
        )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 (numbers only)
