"""The item browser in a real browser: a lead filters to disagreements of one model, opens an
item, reads its timeline and re-queues it."""

import pytest
from playwright.sync_api import expect

from reviews.data.importer import import_pool
from reviews.models import FeedbackEvent, Item
from tests.conftest import jsonl, pool_line
from tests.labeling.test_browser_labeler import sign_in_by_keyboard
from tests.system.test_views_common import human, unanimous_labels

pytestmark = pytest.mark.browser


def pair(model_a, model_b):
    return [
        {"key": "a", "model": model_a, "text": f"Reply from {model_a}"},
        {"key": "b", "model": model_b, "text": f"Reply from {model_b}"},
    ]


def split():
    return [human("ext:ana", "preference", "a"), human("ext:ben", "preference", "b")]


def test_a_lead_filters_opens_reads_the_timeline_and_requeues(page, live_server, lead, campaign, artifacts):
    import_pool(
        campaign,
        jsonl(
            pool_line("atlas-split", responses=pair("atlas", "cirrus"), labels=split()),
            pool_line("ember-split", responses=pair("ember", "cirrus"), labels=split()),
            pool_line("atlas-agreed", responses=pair("atlas", "cirrus"), labels=unanimous_labels("ext:a", "ext:b")),
            pool_line("atlas-fresh", responses=pair("atlas", "ember")),
        ),
    )
    sign_in_by_keyboard(page, live_server, lead)
    page.wait_for_url(f"{live_server.url}/escalations/")  # leads start on the escalation queue
    page.goto(f"{live_server.url}/campaigns/{campaign.slug}/items/")
    expect(page.locator("tr[data-item]")).to_have_count(4)

    page.get_by_label("Model").select_option("atlas")
    page.get_by_label("Has disagreement").check()
    page.get_by_role("button", name="Apply filters").click()
    expect(page.locator("tr[data-item]")).to_have_count(1)
    expect(page.locator('tr[data-item="atlas-split"]')).to_be_visible()
    assert "model=atlas" in page.url and "disagreement=1" in page.url  # the filter is in the URL
    page.screenshot(path=artifacts / "items-filtered.png", full_page=True)

    page.get_by_role("link", name="atlas-split").click()
    expect(page.get_by_role("heading", name="Item atlas-split")).to_be_visible()
    timeline = page.locator("#timeline")
    expect(timeline.locator("li.event")).to_have_count(1)
    expect(timeline).to_contain_text("Imported with labels")
    expect(page.locator("#judgments")).to_contain_text("ext:ana")
    expect(page.locator("#judgments")).to_contain_text("ext:ben")

    actions = page.locator("#actions")
    actions.get_by_label("Action").select_option("requeue")
    actions.get_by_label("Reason").fill("The labelers split: ask two more")
    actions.get_by_role("button", name="Apply").click()
    expect(page.get_by_text("Re-queue: 1 item changed.")).to_be_visible()
    expect(timeline.locator("li.event")).to_have_count(2)
    expect(timeline).to_contain_text("Re-queued")
    expect(timeline).to_contain_text("The labelers split: ask two more")
    page.screenshot(path=artifacts / "item-detail.png", full_page=True)

    item = Item.objects.get(external_id="atlas-split")
    assert item.judgment_target == item.human_judgments + campaign.settings.overlap_k
    event = FeedbackEvent.objects.get(item=item, action=FeedbackEvent.Action.REQUEUED)
    assert event.actor == lead and event.feedback["reason"] == "The labelers split: ask two more"

    # Back to the list keeps the filter.
    page.get_by_role("link", name="Items", exact=True).first.click()
    assert "model=atlas" in page.url and "disagreement=1" in page.url


def test_select_all_on_the_page_and_exclude(page, live_server, lead, campaign):
    import_pool(campaign, jsonl(*(pool_line(f"item-{n}") for n in range(3))))
    sign_in_by_keyboard(page, live_server, lead)
    page.wait_for_url(f"{live_server.url}/escalations/")  # leads start on the escalation queue
    page.goto(f"{live_server.url}/campaigns/{campaign.slug}/items/")
    page.get_by_label("Select every item on this page").check()
    expect(page.locator('input[name="item"]:checked')).to_have_count(3)
    page.locator('select[name="action"]').last.select_option("exclude")
    page.locator('.bulk-actions input[name="reason"]').fill("test items")
    page.locator(".bulk-actions").get_by_role("button", name="Apply").click()
    expect(page.get_by_text("Exclude from the pool: 3 items changed.")).to_be_visible()
    assert Item.objects.filter(excluded=True).count() == 3
