"""Server-rendered SVG for the admin (no external script): a score line and a histogram."""

from __future__ import annotations

from datetime import date, timedelta

from django.utils.html import escape, format_html
from django.utils.safestring import SafeString, mark_safe

_BAND = (("#e8f5e9", 70, 100), ("#fffde7", 40, 70), ("#ffebee", 0, 40))


def score_chart(
    points: list[tuple[date, float | None]],
    *,
    end: date,
    days: int = 90,
    width: int = 600,
    height: int = 160,
    healthy: float = 70.0,
    at_risk: float = 40.0,
) -> SafeString:
    """A line of daily scores over the last `days` days with the status bands behind it."""
    start = end - timedelta(days=days - 1)
    pad = 24

    def x(day: date) -> float:
        return pad + (width - 2 * pad) * (day - start).days / max(days - 1, 1)

    def y(score: float) -> float:
        return height - pad - (height - 2 * pad) * score / 100.0

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
        f'aria-label="Health score, last {days} days">'
    ]
    for color, low, high in (
        (_BAND[0][0], healthy, 100),
        (_BAND[1][0], at_risk, healthy),
        (_BAND[2][0], 0, at_risk),
    ):
        parts.append(
            f'<rect x="{pad}" y="{y(high):.1f}" width="{width - 2 * pad}" '
            f'height="{y(low) - y(high):.1f}" fill="{color}"/>'
        )
    for value in (0, 40, 70, 100):
        parts.append(f'<text x="2" y="{y(value) + 4:.1f}" font-size="10" fill="#666">{value}</text>')
    segment: list[str] = []
    segments: list[list[str]] = []
    for day, score in sorted(points):
        if day < start or day > end:
            continue
        if score is None:
            if segment:
                segments.append(segment)
            segment = []
            continue
        segment.append(f"{x(day):.1f},{y(score):.1f}")
    if segment:
        segments.append(segment)
    for line in segments:
        if len(line) == 1:
            cx, cy = line[0].split(",")
            parts.append(f'<circle cx="{cx}" cy="{cy}" r="2" fill="#1565c0"/>')
        else:
            parts.append(
                f'<polyline fill="none" stroke="#1565c0" stroke-width="2" points="{" ".join(line)}"/>'
            )
    parts.append(
        f'<text x="{pad}" y="{height - 4}" font-size="10" fill="#666">{escape(start.isoformat())}</text>'
    )
    parts.append(
        f'<text x="{width - pad - 60}" y="{height - 4}" font-size="10" fill="#666">'
        f"{escape(end.isoformat())}</text>"
    )
    if not segments:
        parts.append(
            f'<text x="{width / 2 - 40:.0f}" y="{height / 2:.0f}" font-size="12" fill="#666">'
            "no history yet</text>"
        )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 (every dynamic part is a number or escaped)


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


def status_badge(status: str) -> SafeString:
    colors = {"healthy": "#2e7d32", "neutral": "#f9a825", "at_risk": "#c62828"}
    return format_html('<b style="color:{}">{}</b>', colors.get(status, "#666"), status)
