"""Browser tests: Playwright's Python package driving Debian's Chromium (/usr/bin/chromium, which
scripts/install_browser.sh installs) against pytest-django's live server.

Every test saves a screenshot under .artifacts/screenshots/ (git-ignored). With
PERLY_DOCS_SCREENSHOTS=1 the pages docs/admin.md shows are also written to docs/admin/.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / ".artifacts" / "screenshots"
DOCS_SCREENSHOTS = ROOT / "docs" / "admin"
PASSWORD = "browser-test-password-42"
VIEWPORT = {"width": 1280, "height": 800}


@pytest.fixture(scope="module")
def browser():
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is missing: run scripts/install_browser.sh to run the browser tests")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an asyncio loop in this thread, which Django's async-safety
    # check takes for async code; the tests' own ORM calls are plain sync code. Only here.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            yield chromium
            chromium.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def staff_user(transactional_db, django_user_model):
    return django_user_model.objects.create_superuser("casey", "casey@perly.io", PASSWORD)


@pytest.fixture
def page(browser, live_server, staff_user, request):
    """A logged-in page at 1280x800; its screenshot is saved when the test ends."""
    context = browser.new_context(viewport=VIEWPORT, base_url=live_server.url, accept_downloads=True)
    tab = context.new_page()
    tab.set_default_timeout(15_000)
    log_in(tab)
    yield tab
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    tab.screenshot(path=str(SCREENSHOTS / f"{request.node.name}.png"), full_page=True)
    context.close()


def log_in(tab) -> None:
    tab.goto("/admin/login/?next=/admin/")
    tab.fill("#id_username", "casey")
    tab.fill("#id_password", PASSWORD)
    tab.click("input[type=submit]")
    tab.wait_for_url("**/admin/")


def docs_screenshot(tab, name: str) -> None:
    """The page as docs/admin.md shows it (the viewport only, to keep the PNG small)."""
    if os.environ.get("PERLY_DOCS_SCREENSHOTS") != "1":
        return
    DOCS_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    tab.screenshot(path=str(DOCS_SCREENSHOTS / f"{name}.png"))


@pytest.fixture
def book(transactional_db):
    """A small book of business in workspace "acme", scored the way production scores it:
    events, a 45-day health backfill, then today's rollup.

    - Globex Labs (maya, growth): busy every day -> healthy.
    - Quiet Corp (jon, starter): used until 40 days ago -> at risk, scored exactly 0.0 both
      today and 7 days ago, after being healthy.
    - Fading Inc (ines, business): used less and less, nothing for 12 days -> at risk; the
      snapshot of 7 days ago is missing (a nightly rollup that did not run), so "no data".
    """
    from customers.models import Customer
    from health.models import HealthSnapshot
    from health.services import external_signals_upsert, health_backfill, health_rollup
    from perly.services import workspace_create
    from tests.health.conftest import add_events

    workspace = workspace_create(slug="acme", name="Acme")
    now = timezone.now()
    today = now.date()

    def customer(name, owner, plan, stage="active"):
        return Customer.objects.create(
            workspace=workspace, name=name, owner=owner, plan=plan, lifecycle_stage=stage
        )

    globex = customer("Globex Labs", "maya@acme.io", "growth")
    quiet = customer("Quiet Corp", "jon@acme.io", "starter")
    fading = customer("Fading Inc", "ines@acme.io", "business")
    add_events(
        globex,
        [now - timedelta(days=day, hours=hour) for day in range(45) for hour in (2, 5)],
        types=["login", "report.viewed", "seat.invited", "api.call", "export"],
        users=["u1", "u2", "u3", "u4"],
    )
    add_events(quiet, [now - timedelta(days=40 + day, hours=3) for day in range(6)], users=["u9"])
    add_events(
        fading,
        [now - timedelta(days=12 + day * day // 8, hours=4) for day in range(16)],
        types=["login", "report.viewed"],
        users=["u5", "u6"],
    )
    external_signals_upsert(
        workspace_id=workspace.id,
        customer_id=globex.id,
        source="stripe",
        signals=[{"key": "billing.mrr", "value": 1200.0, "unit": "usd", "score": 100}],
    )
    health_backfill(start=today - timedelta(days=45), end=today - timedelta(days=1), workspace_slug="acme")
    health_rollup(workspace_slug="acme")
    HealthSnapshot.objects.filter(customer_id=fading.id, date=today - timedelta(days=7)).delete()
    return {"workspace": workspace, "globex": globex, "quiet": quiet, "fading": fading}
