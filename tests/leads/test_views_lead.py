"""The leads' pages: the permission matrix, the queue, claiming, adjudicating, dismissing, history."""

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from reviews.core.roles import Role
from reviews.data.importer import import_pool
from reviews.leads import adjudication, escalation
from reviews.models import Adjudication, Escalation, FeedbackEvent, FinalAnswer, Item
from reviews.people.accounts import create_user
from tests.conftest import PASSWORD, jsonl, pool_line
from tests.labeling.test_queue import labelers
from tests.leads.test_escalation_rules import submit

pytestmark = pytest.mark.django_db
Status = Escalation.Status
UID = "00000000-0000-0000-0000-0000000000aa"


def model(annotator, criterion, value, response=None):
    out = {"annotator": annotator, "kind": "model", "criterion": criterion, "value": value}
    if response:
        out["response"] = response
    return out


@pytest.fixture
def desk(campaign, labeler):
    """Two items: 'split' escalated by rule 3 after two labelers disagreed (a guardrail also labeled it),
    'flagged' escalated by hand, older and overdue, with a higher risk."""
    import_pool(
        campaign,
        jsonl(
            pool_line("split", risk_prior=0.3, labels=[model("guard:v1", "compliance", "harmful", "a")]),
            pool_line("flagged", risk_prior=0.6),
        ),
    )
    a, b = labelers(2)
    submit(a, campaign, prefer="a")
    submit(b, campaign, prefer="b")
    split = Escalation.objects.get()
    flagged, _ = escalation.open_escalation(
        Item.objects.get(external_id="flagged"), reason="harmful", comment="recipe for harm", user=labeler
    )
    Escalation.objects.filter(pk=flagged.pk).update(uid=UID, created_at=timezone.now() - timedelta(hours=30))
    return {"split": split, "flagged": Escalation.objects.get(pk=flagged.pk)}


def html(response) -> str:
    return response.content.decode()


def form_data(item, prefer="a", rationale="A answers; B dodges."):
    chosen = item.response_a if prefer == "a" else item.response_b
    return {
        "f.preference": chosen.key,
        "f.compliance.a": "full_compliance",
        "f.compliance.b": "full_refusal",
        "f.quality.a": "6",
        "f.quality.b": "2",
        "rationale": rationale,
    }


# -- permission matrix ---------------------------------------------------------------------

GET_URLS = [
    "/escalations/",
    "/escalations/?campaign=demo&status=closed",
    "/campaigns/demo/escalations/",
    f"/escalations/{UID}/",
    "/campaigns/demo/adjudications/",
]
POST_URLS = [
    f"/escalations/{UID}/claim",
    f"/escalations/{UID}/release",
    f"/escalations/{UID}/resolve",
    f"/escalations/{UID}/dismiss",
    f"/escalations/{UID}/reopen",
    "/campaigns/demo/adjudications/revise",
]


@pytest.mark.parametrize("url", GET_URLS + POST_URLS)
@pytest.mark.parametrize("persona", ["anonymous", "outsider", "labeler", "lead", "admin"])
def test_permission_matrix(client, request, desk, url, persona):
    if persona != "anonymous":
        client.force_login(request.getfixturevalue(persona))
    response = client.post(url) if url in POST_URLS else client.get(url)
    if persona == "anonymous":
        assert response.status_code == 302 and response.url.startswith("/accounts/login/?next=")
    elif persona == "outsider":
        assert response.status_code == 403 and "No role yet" in html(response)
    elif persona == "labeler":
        assert response.status_code == 403
    else:
        assert response.status_code in (200, 302, 400)
    if persona in ("anonymous", "outsider", "labeler"):
        assert Escalation.objects.get(uid=UID).status == Status.OPEN
        assert not Adjudication.objects.exists()


@pytest.mark.parametrize("url", POST_URLS)
def test_actions_refuse_get(client, lead, desk, url):
    client.force_login(lead)
    assert client.get(url).status_code == 405


def test_every_lead_route_checks_the_lead_role():
    from reviews.urls import lead as urls_lead

    assert {p.callback.required_role for p in urls_lead.urlpatterns} == {Role.LEAD}


def test_an_unknown_or_malformed_escalation_is_not_found(client, lead, desk):
    client.force_login(lead)
    assert client.get("/escalations/not-a-uuid/").status_code == 404
    assert client.get("/escalations/00000000-0000-0000-0000-000000000000/").status_code == 404


# -- the queue -----------------------------------------------------------------------------


def test_the_queue_orders_by_severity_then_age_and_marks_overdue(client, lead, desk):
    client.force_login(lead)
    page = html(client.get("/escalations/"))
    rows = re.findall(r'data-escalation="([0-9a-f-]+)"', page)
    assert rows == [UID, str(desk["split"].uid)]  # risk 0.6 before 0.3
    assert page.count('class="escalation-row overdue"') == 1
    assert "Open the oldest overdue escalation" in page and f"/escalations/{UID}/" in page
    assert "Labelers disagree on preference 1.00 ≥ 0.5" in page
    assert "Harmful content" in page and "recipe for harm" in page and "30.0 h / 24 min" not in page
    assert "30.0 h / 24.0 h" in page


def test_the_queue_filters_by_campaign_and_status(client, lead, desk):
    from reviews.campaigns.setup import create_campaign
    from tests.conftest import RUBRIC

    other = create_campaign("other", "Other campaign", RUBRIC)
    import_pool(other, jsonl(pool_line("x")))
    escalation.open_escalation(Item.objects.get(campaign=other), reason="broken", user=lead)
    client.force_login(lead)
    assert len(re.findall(r"data-escalation=", html(client.get("/escalations/")))) == 3
    assert len(re.findall(r"data-escalation=", html(client.get("/escalations/?campaign=other")))) == 1
    assert len(re.findall(r"data-escalation=", html(client.get("/campaigns/demo/escalations/")))) == 2
    assert len(re.findall(r"data-escalation=", html(client.get("/escalations/?status=closed")))) == 0


def test_the_queue_costs_the_same_queries_however_many_escalations(client, lead, desk, campaign):
    client.force_login(lead)
    client.get("/escalations/")
    with CaptureQueriesContext(connection) as few:
        client.get("/escalations/")
    import_pool(campaign, jsonl(*(pool_line(f"more-{n}") for n in range(6))))
    for item in Item.objects.filter(external_id__startswith="more-"):
        escalation.open_escalation(item, reason="ambiguous", user=lead)
    with CaptureQueriesContext(connection) as many:
        client.get("/escalations/")
    assert len(many) == len(few)


# -- claiming, adjudicating, dismissing ----------------------------------------------------


def test_a_lead_claims_from_the_queue_and_a_second_lead_is_told_who_has_it(client, lead, desk):
    client.force_login(lead)
    response = client.post(f"/escalations/{UID}/claim", {"from": "queue"})
    assert response.status_code == 302 and response.url == f"/escalations/{UID}/"
    other = create_user("lia", Role.LEAD, password=PASSWORD)
    client.force_login(other)
    response = client.post(f"/escalations/{UID}/claim", {"from": "queue"}, follow=True)
    assert "leo claimed this escalation" in html(response)
    assert Escalation.objects.get(uid=UID).claimed_by == lead
    page = html(client.get(f"/escalations/{UID}/"))
    assert "leo is reviewing this escalation" in page and 'id="adjudication-form"' not in page


def test_the_adjudication_page_shows_every_judgment_side_by_side(client, lead, desk):
    e = escalation.claim(desk["split"], lead)
    client.force_login(lead)
    page = html(client.get(f"/escalations/{e.uid}/"))
    assert page.count('class="judgment-col"') == 2  # the two labelers
    assert page.count('class="judgment-col automated"') == 1 and "guard:v1" in page and "automated" in page
    assert "Shown on the left" in page and "Time spent" in page and "Confidence (1–5)" in page
    assert "Response A ×1, Response B ×1" in page
    assert "No scoring run has scored this item yet" in page
    assert 'id="adjudication-form"' in page and 'id="dismiss-form"' in page
    assert "<script>" not in page and " onclick=" not in page and "/static/reviews/lead.js" in page


def test_invalid_final_answers_re_render_with_messages_and_write_nothing(client, lead, desk):
    e = escalation.claim(desk["split"], lead)
    client.force_login(lead)
    data = {"f.quality.b": "9", "rationale": "", "rubric_ambiguous": "on"}
    response = client.post(f"/escalations/{e.uid}/resolve", data)
    assert response.status_code == 400
    page = html(response)
    assert "Give at least one final answer." in page and "Write a rationale" in page
    assert "Ensure this value is less than or equal to 7." in page or "Choose one of the answers shown." in page
    assert "Say where the rubric is ambiguous." in page
    assert not Adjudication.objects.exists()
    assert Escalation.objects.get(pk=e.pk).status == Status.IN_REVIEW


def test_resolving_records_final_answers_and_opens_the_next_escalation(client, lead, desk):
    e = escalation.claim(desk["split"], lead)
    client.force_login(lead)
    response = client.post(f"/escalations/{e.uid}/resolve", form_data(e.item, "b"))
    assert response.status_code == 302 and response.url == f"/escalations/{UID}/"
    e.refresh_from_db()
    item = Item.objects.get(pk=e.item_id)
    assert e.status == Status.RESOLVED and item.resolved and item.adjudicated and not item.escalated
    assert FinalAnswer.objects.get(item=item, criterion="preference").value == item.response_b.key
    assert FinalAnswer.objects.get(response=item.response_b, criterion="compliance").basis == "adjudication"


def test_an_illegal_move_is_shown_on_the_page(client, lead, desk):
    client.force_login(lead)
    response = client.post(f"/escalations/{UID}/dismiss", {"reason": "nothing wrong"}, follow=True)
    assert "This escalation is open: it cannot be dismissed now." in html(response)
    assert Escalation.objects.get(uid=UID).status == Status.OPEN


def test_dismissing_needs_a_reason(client, lead, desk):
    escalation.claim(desk["flagged"], lead)
    client.force_login(lead)
    response = client.post(f"/escalations/{UID}/dismiss", {"reason": ""})
    assert response.status_code == 400 and "Give a reason for dismissing" in html(response)
    response = client.post(f"/escalations/{UID}/dismiss", {"reason": "A quote from a novel."})
    assert response.status_code == 302
    e = Escalation.objects.get(uid=UID)
    assert (e.status, e.resolution_note) == (Status.DISMISSED, "A quote from a novel.")
    assert not Item.objects.get(external_id="flagged").escalated


def test_release_and_reopen(client, lead, desk):
    escalation.claim(desk["flagged"], lead)
    client.force_login(lead)
    assert client.post(f"/escalations/{UID}/release").status_code == 302
    assert Escalation.objects.get(uid=UID).status == Status.OPEN
    escalation.claim(desk["flagged"], lead)
    escalation.dismiss(desk["flagged"], lead, "fine")
    assert client.post(f"/escalations/{UID}/reopen", {"note": ""}).status_code == 400
    assert client.post(f"/escalations/{UID}/reopen", {"note": "look again"}).status_code == 302
    assert Escalation.objects.get(uid=UID).status == Status.OPEN
    actions = set(FeedbackEvent.objects.filter(actor=lead).values_list("action", flat=True))
    assert {"escalation_claimed", "escalation_released", "escalation_dismissed", "escalation_reopened"} <= actions


# -- adjudication history and the labelers' view ------------------------------------------


def lead_label(annotator, criterion, value, response=None, rationale=""):
    out = {"annotator": annotator, "kind": "lead", "criterion": criterion, "value": value, "rationale": rationale}
    if response:
        out["response"] = response
    return out


def test_imported_and_in_app_adjudications_share_one_history_and_can_be_revised(client, lead, desk, campaign):
    labels = [
        lead_label("ext:lead", "preference", "a", rationale="Imported decision."),
        lead_label("ext:lead", "compliance", "full_compliance", "a"),
        lead_label("ext:lead", "compliance", "full_compliance", "b"),
        lead_label("ext:lead", "quality", 5, "a"),
        lead_label("ext:lead", "quality", 5, "b"),
    ]
    import_pool(campaign, jsonl(pool_line("imported", labels=labels)))
    e = escalation.claim(desk["split"], lead)
    full = [(k[0], k[1], v) for k, v in _full(e.item).items()]
    adjudication.adjudicate(e.item, lead, full, rationale="In-app decision.", escalation=e)
    client.force_login(lead)
    page = html(client.get("/campaigns/demo/adjudications/"))
    assert page.count('class="adjudication-row"') == 2
    assert "Imported decision." in page and "In-app decision." in page and "imported" in page
    response = client.post("/campaigns/demo/adjudications/revise", {"item": "imported", "note": "Quality is 4."})
    revision = Escalation.objects.get(item__external_id="imported")
    assert response.status_code == 302 and response.url == f"/escalations/{revision.uid}/"
    assert (revision.status, revision.claimed_by) == (Status.IN_REVIEW, lead)
    page = html(client.get(response.url))
    assert "Imported decision." in page and "in force" in page


def _full(item):
    return {
        ("preference", None): item.response_a.key,
        ("compliance", item.response_a_id): "full_compliance",
        ("compliance", item.response_b_id): "full_compliance",
        ("quality", item.response_a_id): "5",
        ("quality", item.response_b_id): "4",
    }


def test_the_labelers_history_shows_the_leads_outcome(client, lead, desk):
    e = escalation.claim(desk["split"], lead)
    adjudication.adjudicate(
        e.item, lead, [(k[0], k[1], v) for k, v in _full(e.item).items()], rationale="B misses the point.", escalation=e
    )
    judged_by = e.item.judgments.filter(kind="human").first().annotator.user
    client.force_login(judged_by)
    page = html(client.get("/history/"))
    assert "Adjudicated" in page and "B misses the point." in page


def human_labels(name, prefer="a", a="full_compliance", b="full_compliance"):
    out = {"annotator": name, "kind": "human"}
    return [
        {**out, "criterion": "preference", "value": prefer},
        {**out, "criterion": "compliance", "response": "a", "value": a},
        {**out, "criterion": "compliance", "response": "b", "value": b},
        {**out, "criterion": "quality", "response": "a", "value": 5},
        {**out, "criterion": "quality", "response": "b", "value": 5},
    ]


def test_the_history_shows_an_imported_adjudication_of_a_shared_response(client, campaign):
    """A response adjudicated (imported) on one item decides it on every item that shows it: the labelers
    of the other item see the lead's rationale too."""
    first = pool_line(
        "first",
        labels=[
            *human_labels("ext:h1", a="full_compliance"),
            *human_labels("ext:h2", a="full_refusal"),
            lead_label("ext:lead", "compliance", "full_refusal", "a", rationale="It declines: a refusal."),
        ],
    )
    second = pool_line("second", prompt_id=first["prompt_id"], prompt=first["prompt"])
    second["responses"] = [first["responses"][0], {"key": "c", "model": "model-c", "text": "Answer C"}]
    import_pool(campaign, jsonl(first, second))
    assert Item.objects.get(external_id="first").resolved
    a, b = labelers(2)
    submit(a, campaign, compliance="full_compliance")
    assert submit(b, campaign, compliance="full_compliance").resolved
    client.force_login(a)
    page = html(client.get("/history/"))
    assert "It declines: a refusal." in page and "Adjudicated" in page
    assert "Full refusal" in page  # the final answer of the shared response, differing from theirs
