"""Every dashboard page in a real browser, with a screenshot of each (test-artifacts/dashboards-*.png)."""

import pytest
from playwright.sync_api import expect

from reviews.data.importer import import_pool
from scoring.jobs import rescore_in_foreground
from tests.conftest import PASSWORD, jsonl
from tests.monitoring.test_dashboards import run_worker
from tests.monitoring.test_monitoring import ITEMS, labeled_line

pytestmark = pytest.mark.browser

PAGES = [
    ("overview", "", "Overview"),
    ("quality", "quality/", "Quality"),
    ("slices", "slices/", "Safety slices"),
    ("automated", "automated/", "Automated labelers"),
    ("leaderboard", "leaderboard/", "Leaderboard"),
    ("scoring", "scoring/", "Scoring"),
    ("series", "series/", "Time series"),
]


def sign_in(page, live_server, user):
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Username").fill(user.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def test_a_lead_opens_every_dashboard_and_recomputes(page, live_server, lead, campaign, artifacts, redis_url):
    import_pool(campaign, jsonl(*(labeled_line(n, s) for n, s in ITEMS.items())))
    rescore_in_foreground(campaign, "test")
    sign_in(page, live_server, lead)
    page.goto(f"{live_server.url}/dashboards/")
    page.get_by_role("link", name="Demo campaign").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Overview")
    for name, path, title in PAGES:
        page.get_by_role("navigation", name="Dashboards").get_by_role("link", name=title, exact=True).click()
        expect(page).to_have_url(f"{live_server.url}/dashboards/demo/{path}")
        expect(page.get_by_role("heading", level=1)).to_contain_text(title)
        if name != "series":
            expect(page.locator("svg.chart").first).to_be_visible()
        page.screenshot(path=str(artifacts / f"dashboards-{name}.png"), full_page=True)
    page.get_by_role("button", name="Recompute now").click()
    expect(page.get_by_role("status")).to_contain_text("Recomputation queued")
    run_worker()
    page.reload()
    page.locator("summary", has_text="agreement.krippendorff_alpha").click()
    page.get_by_role("link", name="criterion=compliance").first.click()
    expect(page.locator("table[data-table=series] tbody tr")).to_have_count(2)
    expect(page.locator("svg.chart polyline")).to_have_count(1)
    page.screenshot(path=str(artifacts / "dashboards-series-alpha.png"), full_page=True)
    with page.expect_download() as download:
        page.get_by_role("link", name="CSV").first.click()
    assert download.value.suggested_filename == "demo-series-series.csv"
