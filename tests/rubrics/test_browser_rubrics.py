"""In a real browser: an admin edits a draft rubric, previews it, publishes it, and the next compare page shows it."""

import pytest
from playwright.sync_api import expect

from reviews.campaigns.setup import create_campaign
from reviews.data.importer import import_pool
from reviews.models import Assignment, FeedbackEvent
from tests.conftest import PASSWORD, join, jsonl, pool_line

pytestmark = pytest.mark.browser

RUBRIC = {
    "slug": "helpfulness",
    "title": "Helpfulness v1",
    "guidelines": "Prefer the response that answers the question.",
    "criteria": [{"slug": "preference", "kind": "pairwise", "allow_tie": True, "question": "Which is better?"}],
}


def sign_in(page, live_server, user):
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Username").fill(user.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def test_an_admin_edits_previews_and_publishes_and_the_next_compare_page_shows_the_new_version(
    page, live_server, admin, labeler, artifacts, redis_url
):
    campaign = create_campaign("quick", "Quick preferences", RUBRIC)
    join(campaign, labeler)
    # One item already resolved under v1 by two external annotators: it will be stale under v2.
    votes = [{"annotator": f"ext:{n}", "kind": "human", "criterion": "preference", "value": "a"} for n in (1, 2)]
    import_pool(campaign, jsonl(pool_line("done", labels=votes), *(pool_line(f"item-{n}") for n in range(3))))

    sign_in(page, live_server, admin)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Rubrics").click()
    page.get_by_role("link", name="Helpfulness v1").click()
    page.get_by_role("button", name="New draft from v1").click()
    expect(page.get_by_text("Draft v2 opened as a copy of the latest version.")).to_be_visible()

    page.get_by_label("Title").fill("Helpfulness v2")
    page.get_by_label("Guidelines").fill(
        "Prefer the response that answers the question.\n\nA **refusal** of a safe prompt loses."
    )
    criterion = page.locator("[data-criterion]").first
    criterion.get_by_label("Question").fill("Which response is more helpful?")
    # The spare row adds a per-response scale criterion; the script hides what a scale does not use.
    spare = page.locator("[data-criterion]").nth(1)
    spare.get_by_label("Slug").fill("clarity")
    spare.get_by_label("Kind").select_option("scale")
    expect(spare.get_by_label("Options (choice)")).to_be_hidden()
    spare.get_by_label("Question").fill("How clear is it?")
    spare.get_by_label("Ask for each response").check()
    spare.get_by_label("Scale min").fill("1")
    spare.get_by_label("Scale max").fill("5")
    page.screenshot(path=artifacts / "rubric-editor.png", full_page=True)
    page.get_by_role("button", name="Save draft").click()
    expect(page.get_by_text("Draft v2 saved.")).to_be_visible()

    page.get_by_role("link", name="Preview as labelers see it").click()
    expect(page.get_by_text("Preview of helpfulness v2 (draft)")).to_be_visible()
    expect(page.get_by_text("Which response is more helpful?")).to_be_visible()
    expect(page.get_by_text("How clear is it? (Response A)")).to_be_visible()
    expect(page.locator(".guidelines strong")).to_have_text("refusal")  # Markdown rendered
    expect(page.get_by_role("radio").first).to_be_disabled()
    page.screenshot(path=artifacts / "rubric-preview.png", full_page=True)

    page.get_by_role("link", name="Publish…").click()
    expect(page.get_by_text("A **refusal** of a safe prompt loses.")).to_be_visible()  # the diff
    page.get_by_label("Change note").fill("Refusals of safe prompts lose; ask about clarity.")
    page.get_by_role("button", name="Publish v2").click()
    expect(page.get_by_text("Published helpfulness v2.")).to_be_visible()
    expect(page.get_by_role("heading", name="Stale items")).to_be_visible()
    expect(page.locator('[data-stale-count="quick"]')).to_have_text("1")
    expect(page.locator(".stale-list")).to_contain_text("done")
    page.screenshot(path=artifacts / "rubric-published.png", full_page=True)
    page.get_by_role("button", name="Re-queue 1 item").click()
    expect(page.get_by_text("Re-queued 1 item(s) of quick for judgments under v2.")).to_be_visible()
    expect(page.locator(".stale-list .badge")).to_have_text("re-queued")
    page.get_by_role("button", name="Sign out").click()

    sign_in(page, live_server, labeler)
    expect(page).to_have_url(f"{live_server.url}/campaigns/quick/work/")
    expect(page.get_by_text("Guidelines: Helpfulness v2")).to_be_visible()
    expect(page.get_by_role("group", name="Which response is more helpful?")).to_be_visible()
    expect(page.get_by_role("group", name="How clear is it? (Response B)")).to_be_visible()
    page.screenshot(path=artifacts / "compare-after-publish.png", full_page=True)
    lease = Assignment.objects.get(user=labeler)
    assert lease.rubric_version.number == 2
    event = FeedbackEvent.objects.get(action=FeedbackEvent.Action.RUBRIC_PUBLISHED)
    assert event.feedback["note"] == "Refusals of safe prompts lose; ask about clarity."


def test_an_admin_fixes_a_refused_setting_and_marks_a_gold_item(page, live_server, admin, artifacts):
    campaign = create_campaign("quick", "Quick preferences", RUBRIC)
    import_pool(campaign, jsonl(pool_line("item-0")))
    sign_in(page, live_server, admin)
    page.goto(f"{live_server.url}/campaigns/quick/")
    page.get_by_role("navigation", name="Campaign").get_by_role("link", name="Settings").click()
    page.get_by_label("Audit share ε").fill("1.5")
    page.get_by_label("Total budget").fill("-10")
    page.get_by_label("Note").fill("bigger audit")
    page.get_by_role("button", name="Save as a new version").click()
    alert = page.locator("#form-errors")
    expect(alert).to_contain_text("Nothing was saved.")
    expect(alert).to_contain_text("Audit share ε must be a number between 0 and 1.")
    expect(alert).to_contain_text("Total budget cannot be less than 0.")
    page.screenshot(path=artifacts / "settings-refused.png", full_page=True)
    page.get_by_label("Audit share ε").fill("0.2")
    page.get_by_label("Total budget").fill("1000")
    page.get_by_label("Uncertainty mode").select_option("fisher")
    page.get_by_role("button", name="Save as a new version").click()
    expect(page.get_by_text("Saved as settings version 2.")).to_be_visible()
    assert campaign.settings_versions.order_by("-number").first().uncertainty_mode == "fisher"
    expect(page.locator("#history")).to_contain_text("bigger audit")
    page.screenshot(path=artifacts / "settings-saved.png", full_page=True)

    page.get_by_role("link", name="Gold items").click()
    page.get_by_label("Mark an item as gold: external id").fill("item-0")
    page.get_by_role("button", name="Open").click()
    page.get_by_role("group", name="Which is better?").get_by_text("Response B").click()
    page.get_by_role("button", name="Mark as gold").click()
    expect(page.get_by_text("item-0 is a gold item with 1 known answer(s).")).to_be_visible()
    expect(page.locator("table.data")).to_contain_text("preference = b")
    page.screenshot(path=artifacts / "gold-list.png", full_page=True)
    campaign.refresh_from_db()
    assert campaign.items.get().gold_answers == [{"criterion": "preference", "value": "b"}]
