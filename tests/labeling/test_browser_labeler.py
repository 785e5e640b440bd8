"""The compare page in a real browser: keyboard-only labeling, and model outputs that try to run code."""

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from reviews.campaigns.setup import create_campaign
from reviews.data.importer import import_pool
from reviews.models import Assignment, Escalation, Judgment
from tests.conftest import PASSWORD, RUBRIC, join, jsonl, pool_line

pytestmark = pytest.mark.browser

PAIRWISE_WITH_TIE = {
    "slug": "pairwise-tie",
    "title": "Which is better",
    "guidelines": "Prefer the response that is **correct**, then the shorter one.",
    "criteria": [{"slug": "preference", "kind": "pairwise", "allow_tie": True, "question": "Which is better?"}],
}

EVIL = "<script>alert(1)</script> <img src=x onerror=alert(1)> [x](javascript:alert(1))"


def sign_in_by_keyboard(page, live_server, user):
    page.goto(f"{live_server.url}/")
    expect(page.get_by_label("Username")).to_be_focused()  # autofocus: typing starts there
    page.keyboard.type(user.username)
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")


def ready(page):
    """Wait until compare.js has set up the shortcuts on the current page."""
    expect(page.locator("[data-compare][data-ready]")).to_have_count(1)


def today(page):
    return page.locator('[data-progress="today"]')


def right_key(assignment):
    item = assignment.item
    other = item.response_b if assignment.left_response_id == item.response_a_id else item.response_a
    return other.key


def test_a_labeler_judges_three_items_and_escalates_one_without_a_mouse(page, live_server, labeler, artifacts):
    campaign = create_campaign("quick", "Quick preferences", PAIRWISE_WITH_TIE)
    join(campaign, labeler)
    import_pool(campaign, jsonl(*(pool_line(f"item-{n}") for n in range(5))))
    sign_in_by_keyboard(page, live_server, labeler)
    # The only campaign: login leads straight to the first item.
    expect(page).to_have_url(f"{live_server.url}/campaigns/quick/work/")
    expect(page.get_by_role("heading", name="Response A")).to_be_visible()
    ready(page)

    page.keyboard.press("?")
    expect(page.get_by_role("dialog", name="Keyboard shortcuts")).to_be_visible()
    page.screenshot(path=artifacts / "compare-shortcuts.png")
    page.keyboard.press("Escape")
    expect(page.get_by_role("dialog", name="Keyboard shortcuts")).to_be_hidden()

    for n, key in enumerate(["1", "2", "t"], start=1):
        page.keyboard.press(key)
        page.keyboard.press("Control+Enter")
        expect(today(page)).to_have_text(str(n))
        expect(page.get_by_text("Judgment saved.")).to_be_visible()
        ready(page)

    page.keyboard.press("e")
    expect(page.get_by_label("Ambiguous under the rubric")).to_be_focused()
    expect(page.locator("#escalate")).to_have_attribute("open", "")
    page.keyboard.press("2")  # harmful content
    expect(page.get_by_label("Harmful content")).to_be_checked()
    page.keyboard.press("Tab")
    page.keyboard.type("Both answers give dangerous instructions.")
    page.keyboard.press("Control+Enter")
    expect(page.get_by_text("Escalated: a lead will look at this item.")).to_be_visible()
    expect(today(page)).to_have_text("3")

    judgments = list(Judgment.objects.filter(annotator__user=labeler).order_by("id"))
    assert len(judgments) == 3
    values = [j.answers.get(criterion="preference").value for j in judgments]
    leases = [j.assignment for j in judgments]
    assert values == [leases[0].left_response.key, right_key(leases[1]), "tie"]
    assert all(j.confidence is None and j.time_spent_ms and j.time_spent_ms > 0 for j in judgments)
    escalation = Escalation.objects.get()
    assert (escalation.reason, escalation.comment, escalation.opened_by) == (
        "harmful",
        "Both answers give dangerous instructions.",
        labeler,
    )
    statuses = list(Assignment.objects.filter(user=labeler).order_by("id").values_list("status", flat=True))
    assert statuses == ["submitted", "submitted", "submitted", "escalated", "live"]

    page.goto(f"{live_server.url}/history/")
    expect(page.locator(".history-row")).to_have_count(3)
    page.screenshot(path=artifacts / "history.png", full_page=True)


def test_per_response_questions_have_keys(page, live_server, labeler):
    campaign = create_campaign("full", "Full rubric", RUBRIC)
    join(campaign, labeler)
    import_pool(campaign, jsonl(pool_line("one"), pool_line("two")))
    sign_in_by_keyboard(page, live_server, labeler)
    expect(page).to_have_url(f"{live_server.url}/campaigns/full/work/")
    ready(page)
    # 1: Response A is better; A then 1: A complies; D then 6: A's quality; J then 2: B refuses;
    # K then 3: B's quality; C then 4: confidence; R: a rationale; Esc; Ctrl+Enter.
    for key in ["1", "a", "1", "d", "6", "j", "2", "k", "3", "c", "4", "r"]:
        page.keyboard.press(key)
    page.keyboard.type("A answers, B refuses.")
    page.keyboard.press("Escape")
    for name, value in [
        ("q.preference", "left"),
        ("q.compliance.left", "full_compliance"),
        ("q.quality.left", "6"),
        ("q.compliance.right", "full_refusal"),
        ("q.quality.right", "3"),
        ("confidence", "4"),
    ]:
        expect(page.locator(f'input[name="{name}"][value="{value}"]')).to_be_checked()
    page.keyboard.press("Control+Enter")
    expect(today(page)).to_have_text("1")
    ready(page)

    judgment = Judgment.objects.get()
    lease = judgment.assignment
    left = lease.left_response_id
    right = lease.item.response_b_id if left == lease.item.response_a_id else lease.item.response_a_id
    answers = {(a.criterion, a.response_id): a.value for a in judgment.answers.all()}
    assert answers == {
        ("preference", None): lease.left_response.key,
        ("compliance", left): "full_compliance",
        ("quality", left): "6",
        ("compliance", right): "full_refusal",
        ("quality", right): "3",
    }
    assert (judgment.confidence, judgment.rationale) == (0.75, "A answers, B refuses.")

    page.keyboard.press("s")
    expect(page.get_by_text("Skipped: the item goes to someone else.")).to_be_visible()
    assert list(Assignment.objects.order_by("id").values_list("status", flat=True)) == ["submitted", "skipped"]


def test_a_missing_answer_is_caught_before_anything_is_sent(page, live_server, labeler):
    campaign = create_campaign("full", "Full rubric", RUBRIC)
    join(campaign, labeler)
    import_pool(campaign, jsonl(pool_line("one")))
    sign_in_by_keyboard(page, live_server, labeler)
    ready(page)
    page.keyboard.press("1")
    page.keyboard.press("Control+Enter")
    expect(page).to_have_url(f"{live_server.url}/campaigns/full/work/")
    assert not Judgment.objects.exists()


def test_the_open_page_keeps_its_lease_and_says_when_it_is_lost(page, live_server, labeler, monkeypatch):
    monkeypatch.setattr("reviews.views.labeler.RENEW_EVERY_SECONDS", 1)  # the live server runs in this process
    campaign = create_campaign("quick", "Quick preferences", PAIRWISE_WITH_TIE)
    join(campaign, labeler)
    import_pool(campaign, jsonl(pool_line("one")))
    sign_in_by_keyboard(page, live_server, labeler)
    ready(page)
    lease = Assignment.objects.get()
    Assignment.objects.filter(pk=lease.pk).update(expires_at=timezone.now() + timedelta(seconds=30))
    with page.expect_response(lambda r: r.url.endswith(f"/leases/{lease.uid}/renew")) as renewal:
        page.keyboard.press("1")  # someone is there
    assert renewal.value.status == 200
    lease.refresh_from_db()
    assert lease.expires_at > timezone.now() + timedelta(minutes=14)
    # The lease is lost meanwhile (here: it expired): the page says so instead of failing on submit.
    Assignment.objects.filter(pk=lease.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    expect(page.get_by_role("alert")).to_contain_text("Your lease on this item expired")
    expect(page.get_by_role("alert")).to_contain_text("Reload the page for your next item.")


def test_model_output_renders_as_text_and_runs_nothing(page, live_server, labeler, artifacts):
    campaign = create_campaign("full", "Full rubric", RUBRIC)
    join(campaign, labeler)
    line = pool_line(
        "evil",
        prompt=[
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": "How do I reverse a list in Python? Show some code."},
        ],
        responses=[
            {
                "key": "a",
                "model": "model-a",
                "text": "Use slicing:\n\n```python\nitems = [1, 2, 3]\nprint(items[::-1])\n```\n\n"
                "Or `reversed(items)` for an iterator. See [the docs](https://docs.python.org/3/).\n\n"
                "![diagram](https://images.example.org/diagram.png)\n\n" + EVIL,
            },
            {
                "key": "b",
                "model": "model-b",
                "text": "Call **`items.reverse()`**, which reverses the list in place:\n\n"
                "- it returns `None`\n- it does not copy the list\n\n" + EVIL,
            },
        ],
    )
    import_pool(campaign, jsonl(line))
    dialogs, foreign = [], []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.on("request", lambda request: None if request.url.startswith(live_server.url) else foreign.append(request.url))
    sign_in_by_keyboard(page, live_server, labeler)
    expect(page).to_have_url(f"{live_server.url}/campaigns/full/work/")
    page.wait_for_load_state("networkidle")

    for side in ("left", "right"):
        body = page.locator(f".response-{side} .md")
        expect(body).to_contain_text("<script>alert(1)</script>")
        expect(body).to_contain_text("<img src=x onerror=alert(1)>")
        expect(body).to_contain_text("[x](javascript:alert(1))")
    expect(page.locator(".md img")).to_have_count(0)
    expect(page.locator(".md script, .md style, .md iframe")).to_have_count(0)
    expect(page.locator('a[href^="javascript"]')).to_have_count(0)
    expect(page.locator("script")).to_have_count(1)  # compare.js only
    expect(page.locator(".md pre code").first).to_be_visible()
    expect(page.locator(".turn-system")).to_contain_text("You are a helpful assistant.")
    expect(page.get_by_text("model-a")).to_have_count(0)

    page.set_viewport_size({"width": 1280, "height": 900})
    page.screenshot(path=artifacts / "compare.png", full_page=True)
    page.set_viewport_size({"width": 420, "height": 900})
    left_box = page.locator(".response-left").bounding_box()
    right_box = page.locator(".response-right").bounding_box()
    assert right_box["y"] > left_box["y"] + left_box["height"] - 1  # stacked on a narrow screen
    page.screenshot(path=artifacts / "compare-narrow.png", full_page=True)
    page.set_viewport_size({"width": 1280, "height": 900})
    left_box = page.locator(".response-left").bounding_box()
    right_box = page.locator(".response-right").bounding_box()
    assert abs(right_box["y"] - left_box["y"]) < 1 and right_box["x"] > left_box["x"]  # side by side

    assert dialogs == []
    assert foreign == []
