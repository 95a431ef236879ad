"""CSV exports, downloaded by the browser and parsed."""

from __future__ import annotations

import csv
from pathlib import Path


def _rows(download) -> list[dict]:
    with Path(download.path()).open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_dashboard_exports_the_at_risk_list(page, book):
    page.goto(f"/admin/health/healthmodel/dashboard/?workspace={book['workspace'].id}")

    with page.expect_download() as info:
        page.click("#export-csv")

    rows = {row["name"]: row for row in _rows(info.value)}
    assert set(rows) == {"Quiet Corp", "Fading Inc"}
    assert rows["Quiet Corp"]["owner"] == "jon@acme.io"
    assert rows["Quiet Corp"]["score_7d_ago"] == "0.0"
    assert rows["Fading Inc"]["score_7d_ago"] == ""
    assert rows["Quiet Corp"]["customer_id"] == book["quiet"].id


def test_customers_list_exports_the_selection(page, book):
    page.goto("/admin/customers/customer/")
    for name in ("Globex Labs", "Quiet Corp"):
        page.locator("#result_list tbody tr", has_text=name).locator("input.action-select").check()
    page.select_option("select[name=action]", "export_csv")

    with page.expect_download() as info:
        page.click("button[name=index]")

    rows = {row["name"]: row for row in _rows(info.value)}
    assert set(rows) == {"Globex Labs", "Quiet Corp"}
    assert rows["Globex Labs"]["mrr"] == "1200.0"
    assert rows["Globex Labs"]["health_status"] == "healthy"
    assert rows["Quiet Corp"]["owner"] == "jon@acme.io"
