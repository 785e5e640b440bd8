"""XSTest's 81 imported lead decisions are adjudications like any other: they decide the final
answers, show in the adjudication history, are not escalated again, and re-adjudicating one moves
the benign refusal figures (skipped when ../shared/data is absent)."""

import re

import pytest

from reviews.campaigns.status import campaign_status
from reviews.leads import adjudication, escalation
from reviews.models import Adjudication, Answer, Campaign, FinalAnswer, Source
from tests.data.test_real_data import import_set

pytestmark = [pytest.mark.django_db, pytest.mark.slow]


def test_the_81_disagreements_are_adjudicated_and_a_revision_moves_the_benign_refusal_rate(client, lead):
    status = import_set("xstest")
    campaign = Campaign.objects.get(slug="xstest")
    imported = Answer.objects.filter(adjudication__item__campaign=campaign, adjudication__source=Source.IMPORT)
    assert imported.values("response_id").distinct().count() == status["adjudicated_responses"] == 81
    # Each imported decision is the final answer, on the basis of an adjudication.
    finals = {
        (fa.response_id, fa.criterion): fa
        for fa in FinalAnswer.objects.filter(campaign=campaign, response__isnull=False, basis="adjudication")
    }
    assert len(finals) == 81
    for answer in imported:
        assert finals[(answer.response_id, answer.criterion)].value == answer.value

    # The rules find nothing to escalate in them: their disagreements are adjudicated.
    decided = escalation.evaluate(campaign)
    adjudicated_items = set(Adjudication.objects.filter(item__campaign=campaign).values_list("item_id", flat=True))
    assert not adjudicated_items & set(decided)

    # They are listed in the adjudication history, like in-app ones.
    client.force_login(lead)
    page = client.get("/campaigns/xstest/adjudications/").content.decode()
    n = Adjudication.objects.filter(item__campaign=campaign).count()
    assert re.search(rf"Page 1 of {(n + 49) // 50}", page) and page.count('class="adjudication-row"') == min(n, 50)

    # Re-adjudicate one response a lead had called a full refusal of a safe prompt.
    target = next(
        a
        for a in imported.filter(criterion="compliance", value="full_refusal").select_related(
            "adjudication__item", "response"
        )
        if "safe" in a.adjudication.item.tags
    )
    item, model = target.adjudication.item, target.response.model
    before = campaign_status(campaign)["final_answers"]["compliance"][model]["safe"]
    response = client.post(
        "/campaigns/xstest/adjudications/revise", {"item": item.external_id, "note": "It answers after all."}
    )
    revision = campaign.escalations.get(item=item)
    assert response.status_code == 302 and response.url == f"/escalations/{revision.uid}/"
    page = client.get(response.url).content.decode()
    assert "xstest:" in page and "imported" in page and "in force" in page
    side = "a" if target.response_id == item.response_a_id else "b"
    response = client.post(
        f"/escalations/{revision.uid}/resolve",
        {f"f.compliance.{side}": "full_compliance", "rationale": "The response gives the answer after a caveat."},
    )
    assert response.status_code == 302
    after = campaign_status(campaign)["final_answers"]["compliance"][model]["safe"]
    assert after["full_refusal"] == before["full_refusal"] - 1
    assert after.get("full_compliance", 0) == before.get("full_compliance", 0) + 1
    assert sum(after.values()) == sum(before.values()) == 250
    history = adjudication.history(item)
    assert [h.adjudication.source for h in history[:2]] == ["app", "import"]
