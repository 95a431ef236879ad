"""What a customer-success manager sees each morning, in a real browser at 1280x800."""

from __future__ import annotations

from datetime import date

from health.models import HealthSnapshot
from tests.browser.conftest import VIEWPORT, docs_screenshot


def test_home_lists_the_dashboard_first_and_links_to_it(page, book):
    modules = page.locator("#content-main .module caption a")
    assert modules.first.text_content().strip() == "Today"
    assert modules.nth(1).text_content().strip() == "Customers"
    assert page.locator("a", has_text="View site").get_attribute("href") == "/docs/"
    docs_screenshot(page, "home")

    page.locator("#content-main").get_by_role("link", name="Health dashboard").click()

    page.wait_for_url("**/admin/health/healthmodel/dashboard/")
    assert page.locator("h1").inner_text() == "Health dashboard"


def test_customers_list_shows_health_without_scrolling_at_1280(page, book):
    page.goto("/admin/customers/customer/")

    row = page.locator("#result_list tbody tr", has_text="Quiet Corp")
    health = row.locator("td.field-health")
    box = health.bounding_box()
    assert box is not None
    assert box["x"] >= 0 and box["x"] + box["width"] <= VIEWPORT["width"]
    assert box["y"] + box["height"] <= VIEWPORT["height"]
    assert health.locator(".perly-badge").inner_text() == "at risk"
    assert health.locator(".perly-score").inner_text() == "0.0"
    assert page.evaluate("document.documentElement.scrollWidth") <= VIEWPORT["width"]
    assert page.evaluate(
        "(() => { const r = document.querySelector('.results'); return r.scrollWidth <= r.clientWidth; })()"
    )
    assert row.locator("td.field-owner_short").inner_text() == "jon"
    globex = page.locator("#result_list tbody tr", has_text="Globex Labs")
    assert globex.locator("td.field-mrr_display").inner_text() == "1,200 USD"
    docs_screenshot(page, "customers")


def test_customer_page_opens_on_health_with_a_dated_chart(page, book):
    quiet = book["quiet"]
    snapshots = list(
        HealthSnapshot.objects.filter(customer_id=quiet.id).order_by("date").values_list("date", "score")
    )

    page.goto(f"/admin/customers/customer/{quiet.id}/change/")

    first_section = page.locator("#content-main fieldset").first
    assert first_section.get_attribute("id") == "health"
    chart = page.locator("svg.perly-chart")
    ticks = chart.locator("g.perly-tick")
    assert ticks.count() >= 4
    assert date.fromisoformat(ticks.first.get_attribute("data-date")) == snapshots[0][0]
    assert date.fromisoformat(ticks.last.get_attribute("data-date")) == snapshots[-1][0]
    points = chart.locator("circle.perly-point")
    assert points.count() == len([score for _, score in snapshots if score is not None])
    last_day, last_score = snapshots[-1]
    assert points.last.locator("title").text_content() == f"{last_day.isoformat()}: {last_score:.1f}"
    assert page.locator("#health .perly-reasons li").count() == 2
    assert page.locator("#recent-events tbody tr").count() == 6
    # The workspace is shown, not offered as a choice.
    assert page.locator("select#id_workspace").count() == 0
    docs_screenshot(page, "customer")


def test_dashboard_at_risk_rows_show_owner_and_the_score_a_week_ago(page, book):
    page.goto(f"/admin/health/healthmodel/dashboard/?workspace={book['workspace'].id}")

    rows = page.locator("#at-risk tbody tr")
    quiet = rows.filter(has_text="Quiet Corp")
    fading = rows.filter(has_text="Fading Inc")
    assert quiet.locator("td.at-risk-owner").inner_text() == "jon@acme.io"
    assert quiet.locator("td.at-risk-previous").inner_text() == "0.0"
    assert fading.locator("td.at-risk-owner").inner_text() == "ines@acme.io"
    assert fading.locator("td.at-risk-previous").inner_text() == "no data"
    assert rows.filter(has_text="Globex Labs").count() == 0
    docs_screenshot(page, "dashboard")

    page.select_option("select[name=owner]", "jon@acme.io")
    page.click("#segments button[type=submit]")

    page.wait_for_url("**owner=jon%40acme.io**")
    assert [name.strip() for name in page.locator("#at-risk tbody tr td:first-child").all_inner_texts()] == [
        "Quiet Corp"
    ]
