"""The pages in a real browser (the system Chromium through Playwright)."""

import pytest
from playwright.sync_api import expect

from tests.conftest import PASSWORD

pytestmark = pytest.mark.browser


def test_a_labeler_signs_in_and_out_with_the_keyboard_only(page, live_server, labeler, campaign, artifacts):
    page.goto(f"{live_server.url}/")
    expect(page).to_have_url(f"{live_server.url}/accounts/login/?next=/")
    # The username field has the focus: type, Tab, type, Enter.
    page.keyboard.type(labeler.username)
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    # With one campaign the labeler lands straight on its queue (empty here).
    expect(page).to_have_url(f"{live_server.url}/campaigns/{campaign.slug}/work/")
    page.screenshot(path=artifacts / "queue-empty.png", full_page=True)
    page.get_by_role("button", name="Sign out").focus()
    page.keyboard.press("Enter")
    expect(page).to_have_url(f"{live_server.url}/accounts/login/")


def test_a_wrong_password_says_so_and_keeps_the_username(page, live_server, labeler):
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Username").fill(labeler.username)
    page.get_by_label("Password").fill("not the password")
    page.keyboard.press("Enter")
    expect(page.get_by_role("alert")).to_contain_text("enter a correct username and password")
    expect(page.get_by_label("Username")).to_have_value(labeler.username)
