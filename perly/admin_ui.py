"""Small pieces every staff page shares: the status badge, the change arrow, number formats and
CSV downloads. Styles are in perly/static/perly/admin.css (loaded by admin/base_site.html)."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from datetime import date, datetime

from django.http import HttpResponse
from django.utils.html import format_html
from django.utils.safestring import SafeString

from perly.timestamps import iso

# Known statuses get their colour; "churned" (a customer who left) is grey, like "unknown".
BADGE_STATUSES = ("healthy", "neutral", "at_risk", "churned", "unknown")


def status_badge(status: str | None) -> SafeString:
    status = status or "unknown"
    css = status if status in BADGE_STATUSES else "unknown"
    return format_html('<span class="perly-badge perly-{}">{}</span>', css, status.replace("_", " "))


def score_text(score: float | None, missing: str = "no data") -> str:
    """0.0 is a score like any other; only a missing one is said in words."""
    return missing if score is None else f"{score:.1f}"


def change_arrow(delta: float | None) -> SafeString:
    if delta is None:
        return format_html('<span class="perly-change perly-flat" title="{}">–</span>', "no score to compare")
    if abs(delta) < 0.05:
        return format_html('<span class="perly-change perly-flat" title="unchanged">→ {}</span>', "0.0")
    arrow, css = ("▲", "perly-up") if delta > 0 else ("▼", "perly-down")
    return format_html('<span class="perly-change {}">{} {}</span>', css, arrow, f"{delta:+.1f}")


def measure(value: float | None, unit: str | None) -> str:
    """A signal's value with its unit, to one decimal at most: "40.1 days", "3 users"."""
    if value is None:
        return "—"
    return f"{round(value, 1):g} {unit or ''}".strip()


def money(value: float | None, unit: str | None) -> str:
    if value is None:
        return "—"
    currency = (unit or "").upper()
    return f"{value:,.0f} {currency}".strip()


_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def _cell(value) -> str | int | float:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bool | int | float):
        return value
    text = str(value)
    # A customer name like "=HYPERLINK(...)" must stay text when a spreadsheet opens the file.
    return "'" + text if text.startswith(_FORMULA_PREFIXES) else text


def csv_response(filename: str, header: Sequence[str], rows: Iterable[Sequence]) -> HttpResponse:
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    writer = csv.writer(response)
    writer.writerow(header)
    for row in rows:
        writer.writerow([_cell(value) for value in row])
    return response
