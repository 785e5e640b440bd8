"""A lead in a real browser: open the oldest overdue escalation, claim and adjudicate it with keyboard
and mouse; the labeler then sees the outcome on their history page."""

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from reviews.data.importer import import_pool
from reviews.leads import escalation
from reviews.models import Escalation, FinalAnswer, Item
from tests.conftest import jsonl, pool_line
from tests.labeling.test_browser_labeler import sign_in_by_keyboard
from tests.labeling.test_queue import labelers
from tests.leads.test_escalation_rules import submit

pytestmark = pytest.mark.browser


def test_a_lead_adjudicates_the_oldest_overdue_escalation_and_the_labeler_sees_it(
    page, live_server, campaign, lead, labeler, artifacts
):
    import_pool(
        campaign,
        jsonl(pool_line("split", risk_prior=0.2), pool_line("fresh", risk_prior=0.7), pool_line("old", risk_prior=0.1)),
    )
    a, b = labelers(2)
    submit(a, campaign, prefer="a")
    submit(b, campaign, prefer="b")
    split = Escalation.objects.get()
    assert split.item.external_id == "split"
    fresh, _ = escalation.open_escalation(Item.objects.get(external_id="fresh"), reason="ambiguous", user=labeler)
    old, _ = escalation.open_escalation(Item.objects.get(external_id="old"), reason="broken", user=labeler)
    now = timezone.now()
    Escalation.objects.filter(pk=split.pk).update(created_at=now - timedelta(hours=50))
    Escalation.objects.filter(pk=old.pk).update(created_at=now - timedelta(hours=30))

    sign_in_by_keyboard(page, live_server, lead)
    page.get_by_role("link", name="Escalations").first.click()
    expect(page.locator("tr.escalation-row")).to_have_count(3)
    expect(page.locator("tr.escalation-row.overdue")).to_have_count(2)
    page.screenshot(path=artifacts / "lead-queue.png", full_page=True)
    page.get_by_role("link", name="Open the oldest overdue escalation").click()
    expect(page).to_have_url(f"{live_server.url}/escalations/{split.uid}/")
    expect(page.locator("[data-adjudicate][data-ready]")).to_have_count(1)
    expect(page.get_by_text("Labelers disagree on preference 1.00 ≥ 0.5")).to_be_visible()

    page.keyboard.press("c")  # claim
    expect(page.get_by_text("Claimed: the escalation is yours to review.")).to_be_visible()
    expect(page.locator("[data-adjudicate][data-ready]")).to_have_count(1)
    page.keyboard.press("1")  # the preference: Response A; moves on to Response A's compliance
    page.keyboard.press("j")  # skip to Response B's compliance
    page.get_by_role("group", name="Does it comply? (Response B)").get_by_text("Full refusal").click()  # mouse
    page.keyboard.press("r")
    page.keyboard.type("A answers the question; B declines a safe request.")
    page.keyboard.press("Escape")
    page.keyboard.press("m")
    page.keyboard.type("Say whether a polite deflection counts as a refusal.")
    page.screenshot(path=artifacts / "lead-adjudicate.png", full_page=True)
    page.keyboard.press("Control+Enter")
    expect(page.get_by_text("Adjudicated: the final answers are recorded")).to_be_visible()

    split.refresh_from_db()
    item = Item.objects.get(pk=split.item_id)
    assert split.status == Escalation.Status.RESOLVED and item.resolved and not item.escalated
    assert FinalAnswer.objects.get(item=item, criterion="preference").value == item.response_a.key
    assert FinalAnswer.objects.get(response=item.response_b, criterion="compliance").value == "full_refusal"
    adjudication = item.adjudications.get()
    assert adjudication.rubric_ambiguous and "polite deflection" in adjudication.ambiguity_note
    # The next open escalation (by severity) came up.
    expect(page).to_have_url(f"{live_server.url}/escalations/{fresh.uid}/")

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    sign_in_by_keyboard(page, live_server, b)
    expect(page).to_have_url(f"{live_server.url}/campaigns/demo/work/")  # the only campaign
    page.get_by_role("link", name="My history").first.click()
    row = page.locator(".history-row").filter(has_text=item.prompt.text)
    expect(row.get_by_text("Adjudicated")).to_be_visible()
    expect(row.get_by_text("A answers the question; B declines a safe request.")).to_be_visible()
    page.screenshot(path=artifacts / "lead-outcome-history.png", full_page=True)
