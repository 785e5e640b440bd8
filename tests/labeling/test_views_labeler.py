"""The labelers' pages through the Django test client: the compare page, its lease actions, and history."""

import re
import uuid
from datetime import timedelta

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from reviews.campaigns.setup import create_campaign
from reviews.core.roles import Role
from reviews.data.importer import import_pool
from reviews.labeling import queue
from reviews.labeling.progress import gold_answer_map
from reviews.leads import final_answers
from reviews.models import (
    Adjudication,
    Annotator,
    Answer,
    Assignment,
    Escalation,
    FeedbackEvent,
    Item,
    Judgment,
)
from reviews.people.accounts import create_user
from tests.conftest import PASSWORD, join, jsonl, pool_line

pytestmark = pytest.mark.django_db

Status = Assignment.Status

PAIRWISE_ONLY = {
    "slug": "pairwise-only",
    "title": "Pairwise only",
    "guidelines": "Pick the more helpful response.",
    "criteria": [{"slug": "preference", "kind": "pairwise", "question": "Which is more helpful?"}],
}


@pytest.fixture
def pool(campaign):
    import_pool(campaign, jsonl(*(pool_line(f"item-{n}") for n in range(3))))
    return campaign


@pytest.fixture
def signed_in(client, labeler):
    client.force_login(labeler)
    return client


def html_of(response) -> str:
    return response.content.decode()


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def work_url(campaign) -> str:
    return reverse("reviews:work", args=[campaign.slug])


def lease_url(action: str, uid) -> str:
    return reverse(f"reviews:lease_{action}", args=[str(uid)])


def open_item(client, campaign):
    """GET the work page; return (response, assignment)."""
    response = client.get(work_url(campaign))
    assert response.status_code == 200
    return response, response.context["assignment"]


def full_answers(preference="left", **overrides) -> dict:
    """A complete POST for the test rubric (tests.conftest.RUBRIC)."""
    data = {
        "q.preference": preference,
        "q.compliance.left": "full_compliance",
        "q.compliance.right": "full_refusal",
        "q.quality.left": "6",
        "q.quality.right": "2",
        "confidence": "4",
        "rationale": "A answers; B refuses.",
        "time_spent_ms": "4321",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def right_of(assignment):
    item = assignment.item
    return item.response_b if assignment.left_response_id == item.response_a_id else item.response_a


def is_checked(html: str, name: str, value: str) -> bool:
    return re.search(rf'<input type="radio" name="{re.escape(name)}" value="{re.escape(value)}"[^>]*\bchecked', html)


# -- the compare page -------------------------------------------------------------------------


def test_the_work_page_shows_the_leased_item_blind(client, campaign, labeler):
    secret = pool_line(
        "ext-id-4711",
        responses=[
            {"key": "gpt-secret-key", "model": "Secret-Model-X", "text": "First **answer**"},
            {"key": "llama-secret-key", "model": "Secret-Model-Y", "text": "Second answer\n\n```\ncode()\n```"},
        ],
        prompt=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is *two*?"}],
    )
    import_pool(campaign, jsonl(secret))
    client.force_login(labeler)
    response, assignment = open_item(client, campaign)
    html = html_of(response)
    assert assignment.user == labeler and assignment.status == Status.LIVE
    assert "Response A" in html and "Response B" in html
    for hidden in ("gpt-secret-key", "llama-secret-key", "Secret-Model-X", "Secret-Model-Y", "ext-id-4711"):
        assert hidden not in html  # response keys, model names and the external id stay hidden
    # Response A is the assignment's recorded left response, rendered as Markdown.
    left_html = html.split('id="response-left-heading"')[1].split('id="response-right-heading"')[0]
    assert (
        "<strong>answer</strong>" in left_html
        if assignment.left_response.key == "gpt-secret-key"
        else "<pre><code>code()" in left_html
    )
    # The chat transcript as labeled turns.
    assert 'class="turn turn-system"' in html and 'class="turn turn-user"' in html
    assert "<em>two</em>" in html


def test_the_compare_page_has_the_rubric_and_its_keys(signed_in, pool):
    response, _ = open_item(signed_in, pool)
    html = html_of(response)
    assert '<details class="card guidelines">' in html and "<strong>better</strong>" in html
    for name in ("q.preference", "q.compliance.left", "q.compliance.right", "q.quality.left", "q.quality.right"):
        assert f'name="{name}"' in html
    assert 'name="confidence"' in html and 'name="rationale"' in html and 'name="time_spent_ms"' in html
    # Pairwise keys, per-response question keys and the shortcut overlay.
    assert "data-pairwise" in html and 'value="tie"' in html
    assert re.search(r'data-key="a"[^>]*>\s*<legend><kbd class="key">A</kbd> Does it comply\? \(Response A\)', html)
    assert re.search(r'data-key="j"[^>]*>\s*<legend><kbd class="key">J</kbd> Does it comply\? \(Response B\)', html)
    assert '<dialog id="shortcuts"' in html and "Ctrl</kbd> + <kbd>Enter" in html
    # CSP-ready: scripts and styles come from files only.
    assert 'src="/static/reviews/compare.js"' in html and 'href="/static/reviews/compare.css"' in html
    assert not re.search(r"<script(?![^>]*\ssrc=)", html)
    assert " style=" not in html
    # The escalate reasons (a rule's reason is not the labeler's to choose).
    for reason in ("ambiguous", "harmful", "broken", "other"):
        assert f'name="escalate-reason" value="{reason}"' in html
    assert 'value="rule"' not in html


def test_a_model_output_cannot_inject_markup(client, campaign, labeler):
    evil = "<script>alert(1)</script> <img src=x onerror=alert(1)> [x](javascript:alert(1)) <style>*{}</style>"
    line = pool_line("evil")
    line["responses"][0]["text"] = evil
    line["responses"][1]["text"] = evil
    import_pool(campaign, jsonl(line))
    client.force_login(labeler)
    html = html_of(open_item(client, campaign)[0])
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html and "<img" not in html
    assert 'href="javascript' not in html and "<style>" not in html


def test_asking_again_shows_the_same_lease(signed_in, pool):
    _, first = open_item(signed_in, pool)
    _, again = open_item(signed_in, pool)
    assert first.pk == again.pk
    assert Assignment.objects.count() == 1


# -- submitting -------------------------------------------------------------------------------


def test_a_submission_records_one_judgment_and_the_next_item_loads(signed_in, pool, labeler):
    _, a = open_item(signed_in, pool)
    response = signed_in.post(lease_url("submit", a.uid), full_answers("left"))
    assert response.status_code == 302 and response.url == work_url(pool)
    assert messages_of(response) == ["Judgment saved."]
    judgment = Judgment.objects.get()
    assert (judgment.assignment, judgment.confidence, judgment.time_spent_ms) == (a, 0.75, 4321)
    assert judgment.rationale == "A answers; B refuses." and judgment.left_response == a.left_response
    answers = {(x.criterion, x.response_id): x.value for x in judgment.answers.all()}
    right = right_of(a)
    assert answers == {
        ("preference", None): a.left_response.key,
        ("compliance", a.left_response_id): "full_compliance",
        ("compliance", right.id): "full_refusal",
        ("quality", a.left_response_id): "6",
        ("quality", right.id): "2",
    }
    a.refresh_from_db()
    assert a.status == Status.SUBMITTED
    page, b = open_item(signed_in, pool)
    assert b.item_id != a.item_id and b.status == Status.LIVE
    assert page.context["progress"].judged_today == 1


def test_right_and_tie_map_to_the_right_response_key_and_tie(client, pool):
    first, second = join(pool, *(create_user(f"lab{n}", Role.LABELER, password=PASSWORD) for n in range(2)))
    client.force_login(first)
    _, a = open_item(client, pool)
    client.post(lease_url("submit", a.uid), full_answers("right"))
    client.force_login(second)
    _, b = open_item(client, pool)
    client.post(lease_url("submit", b.uid), full_answers("tie"))
    values = dict(Answer.objects.filter(criterion="preference").values_list("judgment__annotator__user", "value"))
    assert values == {first.id: right_of(a).key, second.id: "tie"}


def test_with_only_a_pairwise_criterion_the_choice_alone_is_a_judgment(client, labeler):
    campaign = create_campaign("quick", "Quick", PAIRWISE_ONLY)
    join(campaign, labeler)
    import_pool(campaign, jsonl(pool_line("q1"), pool_line("q2")))
    client.force_login(labeler)
    _, a = open_item(client, campaign)
    html = html_of(client.get(work_url(campaign)))
    assert 'value="tie"' not in html  # no tie unless the rubric allows it
    response = client.post(lease_url("submit", a.uid), {"q.preference": "left"})
    assert response.status_code == 302
    judgment = Judgment.objects.get()
    assert (judgment.confidence, judgment.time_spent_ms, judgment.rationale) == (None, None, "")
    assert list(judgment.answers.values_list("criterion", "response", "value")) == [
        ("preference", None, a.left_response.key)
    ]


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"q.compliance.right": None}, "q.compliance.right", "Choose an answer for Response B."),
        ({"q.preference": None}, "q.preference", "Choose Response A, Response B or a tie."),
        ({"q.compliance.left": "mostly_compliant"}, "q.compliance.left", "is not an option of this rubric version"),
        ({"q.quality.left": "9"}, "q.quality.left", "Choose a value from 1 to 7."),
        ({"q.quality.right": "0"}, "q.quality.right", "Choose a value from 1 to 7."),
        ({"q.quality.right": "2.5"}, "q.quality.right", "Enter a whole number from 1 to 7."),
        ({"q.preference": "a"}, "q.preference", "is not an answer here"),
        ({"confidence": "6"}, "confidence", "Confidence is 1 to 5, or not given."),
        ({"time_spent_ms": "-5"}, "time_spent_ms", "Time spent cannot be negative."),
    ],
)
def test_an_invalid_form_re_renders_with_messages_and_keeps_the_answers(signed_in, pool, overrides, field, message):
    _, a = open_item(signed_in, pool)
    data = full_answers("right", rationale="Kept <b>as typed</b>", **overrides)
    response = signed_in.post(lease_url("submit", a.uid), data)
    assert response.status_code == 400
    html = html_of(response)
    assert message in html
    assert response.context["form"].errors.get(field)
    assert 'role="alert"' in html and "Some answers need attention" in html
    # The answers that were valid stay selected, the rationale stays typed (escaped).
    for name in ("q.preference", "q.compliance.left", "q.compliance.right", "q.quality.left", "q.quality.right"):
        if name != field and name in data:
            assert is_checked(html, name, data[name]), name
    assert "Kept &lt;b&gt;as typed&lt;/b&gt;</textarea>" in html
    assert Judgment.objects.count() == 0
    a.refresh_from_db()
    assert a.status == Status.LIVE


def test_a_tie_is_refused_when_the_rubric_allows_none(client, labeler):
    campaign = create_campaign("quick", "Quick", PAIRWISE_ONLY)
    join(campaign, labeler)
    import_pool(campaign, jsonl(pool_line("q1")))
    client.force_login(labeler)
    _, a = open_item(client, campaign)
    response = client.post(lease_url("submit", a.uid), {"q.preference": "tie"})
    assert response.status_code == 400
    assert "Choose Response A or Response B" in html_of(response)
    assert Judgment.objects.count() == 0


def test_a_double_submit_records_one_judgment(signed_in, pool):
    _, a = open_item(signed_in, pool)
    first = signed_in.post(lease_url("submit", a.uid), full_answers())
    second = signed_in.post(lease_url("submit", a.uid), full_answers("right"))
    assert first.status_code == second.status_code == 302
    assert second.url == work_url(pool)
    assert Judgment.objects.count() == 1
    assert Answer.objects.get(criterion="preference").value == a.left_response.key
    assert FeedbackEvent.objects.filter(action=FeedbackEvent.Action.JUDGED).count() == 1
    # The retry moves on quietly: no error for the labeler.
    assert not any("already" in m for m in messages_of(second))


def test_an_invalid_retry_of_a_finished_lease_moves_on(signed_in, pool):
    _, a = open_item(signed_in, pool)
    signed_in.post(lease_url("submit", a.uid), full_answers())
    response = signed_in.post(lease_url("submit", a.uid), {"q.preference": "left"})
    assert response.status_code == 302 and response.url == work_url(pool)
    assert Judgment.objects.count() == 1


@pytest.mark.parametrize("action", ["submit", "skip", "escalate"])
def test_a_foreign_or_forged_lease_gets_a_message_and_writes_nothing(client, pool, labeler, action):
    other = create_user("olga", Role.LABELER, password=PASSWORD)
    client.force_login(labeler)
    _, mine = open_item(client, pool)
    client.force_login(other)
    data = {**full_answers(), "escalate-reason": "harmful", "escalate-comment": "x"}
    for uid in (mine.uid, uuid.uuid4(), "not-a-lease"):
        response = client.post(lease_url(action, uid), data)
        assert response.status_code == 302 and response.url == reverse("reviews:work_start")
        assert messages_of(response)[-1] == "That item is not assigned to you."
    assert Judgment.objects.count() == 0 and Escalation.objects.count() == 0
    assert not FeedbackEvent.objects.exclude(action=FeedbackEvent.Action.IMPORTED).exists()
    mine.refresh_from_db()
    assert mine.status == Status.LIVE


@pytest.mark.parametrize("action", ["submit", "skip", "escalate"])
def test_an_expired_lease_gets_a_message_and_writes_nothing(signed_in, pool, action):
    _, a = open_item(signed_in, pool)
    Assignment.objects.filter(pk=a.pk).update(expires_at=a.created_at - timedelta(seconds=1))
    data = {**full_answers(), "escalate-reason": "harmful", "escalate-comment": "x"}
    response = signed_in.post(lease_url(action, a.uid), data)
    assert response.status_code == 302 and response.url == work_url(pool)
    assert messages_of(response) == [
        "Your lease on this item expired, so it went back to the queue. Nothing was saved."
    ]
    assert Judgment.objects.count() == 0 and Escalation.objects.count() == 0
    assert not FeedbackEvent.objects.exclude(action=FeedbackEvent.Action.IMPORTED).exists()


def test_an_expired_lease_with_an_invalid_form_says_expired(signed_in, pool):
    _, a = open_item(signed_in, pool)
    Assignment.objects.filter(pk=a.pk).update(expires_at=a.created_at - timedelta(seconds=1))
    response = signed_in.post(lease_url("submit", a.uid), {"q.preference": "left"})
    assert response.status_code == 302
    assert "expired" in messages_of(response)[0]


def test_after_an_expired_lease_the_work_page_serves_again(signed_in, pool):
    _, a = open_item(signed_in, pool)
    Assignment.objects.filter(pk=a.pk).update(expires_at=a.created_at - timedelta(seconds=1))
    response = signed_in.get(work_url(pool))
    assert response.status_code == 200
    a.refresh_from_db()
    assert a.status == Assignment.Status.EXPIRED
    assert Assignment.objects.filter(status=Assignment.Status.LIVE).count() == 1


# -- skip and escalate ------------------------------------------------------------------------


def test_skipping_passes_the_item_on(signed_in, pool):
    _, a = open_item(signed_in, pool)
    response = signed_in.post(lease_url("skip", a.uid), {"skip-time_spent_ms": "900"})
    assert response.status_code == 302 and response.url == work_url(pool)
    a.refresh_from_db()
    assert a.status == Status.SKIPPED and Judgment.objects.count() == 0
    assert FeedbackEvent.objects.get(action=FeedbackEvent.Action.SKIPPED).feedback["time_spent_ms"] == 900
    _, b = open_item(signed_in, pool)
    assert b.item_id != a.item_id


def test_escalating_sends_the_item_to_the_leads(signed_in, pool, labeler):
    _, a = open_item(signed_in, pool)
    response = signed_in.post(
        lease_url("escalate", a.uid),
        {"escalate-reason": "ambiguous", "escalate-comment": "The rubric says nothing about jokes."},
    )
    assert response.status_code == 302 and response.url == work_url(pool)
    escalation = Escalation.objects.get()
    assert (escalation.reason, escalation.comment, escalation.opened_by, escalation.item_id) == (
        "ambiguous",
        "The rubric says nothing about jokes.",
        labeler,
        a.item_id,
    )
    assert Item.objects.get(pk=a.item_id).escalated
    a.refresh_from_db()
    assert a.status == Status.ESCALATED
    assert open_item(signed_in, pool)[1].item_id != a.item_id


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"escalate-comment": "no reason"}, "Choose a reason for the escalation."),
        ({"escalate-reason": "rule"}, "Choose one of the listed reasons."),
        ({"escalate-reason": "other", "escalate-comment": "  "}, "Say what is wrong when the reason is “other”."),
    ],
)
def test_an_escalation_needs_a_listed_reason(signed_in, pool, data, message):
    _, a = open_item(signed_in, pool)
    response = signed_in.post(lease_url("escalate", a.uid), data)
    assert response.status_code == 400
    html = html_of(response)
    assert message in html
    assert '<details id="escalate" class="escalate" open>' in html
    assert Escalation.objects.count() == 0
    a.refresh_from_db()
    assert a.status == Status.LIVE


# -- lease renewal ----------------------------------------------------------------------------


def test_the_page_renews_its_own_live_lease(signed_in, pool):
    _, a = open_item(signed_in, pool)
    Assignment.objects.filter(pk=a.pk).update(expires_at=a.created_at + timedelta(minutes=1))
    response = signed_in.post(lease_url("renew", a.uid))
    assert response.status_code == 200 and response.json()["ok"] is True
    a.refresh_from_db()
    assert a.expires_at > a.created_at + timedelta(minutes=14)


def test_renewal_is_refused_for_other_dead_or_forged_leases(client, pool, labeler):
    other = create_user("olga", Role.LABELER, password=PASSWORD)
    client.force_login(labeler)
    _, a = open_item(client, pool)
    client.force_login(other)
    assert client.post(lease_url("renew", a.uid)).status_code == 404
    assert client.post(lease_url("renew", "forged")).json()["error"] == "That item is not assigned to you."
    client.force_login(labeler)
    Assignment.objects.filter(pk=a.pk).update(expires_at=a.created_at)
    expired = client.post(lease_url("renew", a.uid))
    assert expired.status_code == 409 and "expired" in expired.json()["error"]
    Assignment.objects.filter(pk=a.pk).update(expires_at=a.created_at + timedelta(minutes=5), status=Status.SKIPPED)
    done = client.post(lease_url("renew", a.uid))
    assert done.status_code == 409 and done.json()["error"] == "This item was already skipped."
    a.refresh_from_db()
    assert a.expires_at == a.created_at + timedelta(minutes=5)


def test_renewal_needs_the_csrf_token(pool, labeler):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    strict.force_login(labeler)
    a = strict.get(work_url(pool)).context["assignment"]
    assert strict.post(lease_url("renew", a.uid)).status_code == 403
    token = strict.cookies["csrftoken"].value
    assert strict.post(lease_url("renew", a.uid), headers={"X-CSRFToken": token}).status_code == 200


# -- empty queue, spent budget ----------------------------------------------------------------


def test_an_empty_queue_says_so(signed_in, campaign):
    response = signed_in.get(work_url(campaign))
    assert response.status_code == 200
    assert response.templates[0].name == "reviews/queue_empty.html"
    html = html_of(response)
    assert "Nothing to judge right now" in html and "The queue is empty" in html


def test_a_spent_budget_says_so_not_empty(signed_in, pool):
    pool.update_settings(budget_total=1)
    _, a = open_item(signed_in, pool)
    strip = html_of(signed_in.get(work_url(pool)))
    assert re.search(r'data-progress="budget">1<', strip)
    signed_in.post(lease_url("submit", a.uid), full_answers())
    html = html_of(signed_in.get(work_url(pool)))
    assert "Budget spent" in html and "label budget is spent" in html
    assert "queue is empty" not in html
    assert re.search(r'data-progress="budget">0<', html) and re.search(r'data-progress="today">1<', html)
    pool.update_settings(budget_total=None, budget_daily=1)
    html = html_of(signed_in.get(work_url(pool)))
    assert "Today's budget spent" in html and "Come back tomorrow" in html
    assert re.search(r'data-progress="budget">no cap<', html) and re.search(r'data-progress="daily">0<', html)


def test_a_campaign_without_a_published_rubric_says_so(signed_in, labeler):
    campaign = create_campaign("bare", "Bare")
    join(campaign, labeler)
    html = html_of(signed_in.get(work_url(campaign)))
    assert "no published rubric" in html


# -- progress: gold accuracy ------------------------------------------------------------------


def test_gold_accuracy_shows_once_the_labeler_has_judged_gold_items(signed_in, pool):
    html = html_of(signed_in.get(work_url(pool)))
    assert "gold accuracy" not in html
    a = Assignment.objects.get()
    signed_in.post(lease_url("submit", a.uid), full_answers("left"))
    item = a.item
    left, right = a.left_response, right_of(a)
    # Gold: the left response is better (agrees), its compliance agrees, the right's quality differs.
    Item.objects.filter(pk=item.pk).update(
        is_gold=True,
        gold_answers={"preference": left.key, "compliance": {left.key: "full_compliance"}, "quality": {right.key: 5}},
    )
    html = html_of(signed_in.get(work_url(pool)))
    assert re.search(r'data-progress="gold">67% <span class="muted">of 3</span>', html)


def test_gold_answers_read_as_a_map_or_as_labels():
    item = Item(gold_answers=[{"criterion": "quality", "response": "a", "value": 3}, {"criterion": "p", "value": "b"}])
    assert gold_answer_map(item) == {("quality", "a"): "3", ("p", None): "b"}
    item.gold_answers = {"p": "tie", "c": {"a": "x", "b": "y"}}
    assert gold_answer_map(item) == {("p", None): "tie", ("c", "a"): "x", ("c", "b"): "y"}
    item.gold_answers = None
    assert gold_answer_map(item) == {}


# -- history ----------------------------------------------------------------------------------


def judge_via_queue(user, campaign, preference="left", *, rationale=""):
    a = queue.claim_next(campaign, user).assignment
    right = right_of(a)
    chosen = a.left_response if preference == "left" else right
    answers = [
        ("preference", None, chosen.key),
        ("compliance", a.item.response_a_id, "full_compliance"),
        ("compliance", a.item.response_b_id, "full_refusal"),
        ("quality", a.item.response_a_id, "6"),
        ("quality", a.item.response_b_id, "2"),
    ]
    queue.submit(user, a.uid, answers, confidence=3, rationale=rationale, time_spent_ms=10)
    return a


def test_history_lists_own_judgments_newest_first_with_final_answers_of_resolved_items(client, pool, labeler, lead):
    (olga,) = join(pool, create_user("olga", Role.LABELER, password=PASSWORD))
    first = judge_via_queue(labeler, pool, rationale="my first")
    # Olga agrees on the same response whatever side she saw it on: the item resolves.
    olga_lease = queue.claim_next(pool, olga).assignment
    assert olga_lease.item_id == first.item_id
    queue.submit(
        olga,
        olga_lease.uid,
        [
            ("preference", None, first.left_response.key),
            ("compliance", first.item.response_a_id, "full_compliance"),
            ("compliance", first.item.response_b_id, "full_refusal"),
            ("quality", first.item.response_a_id, "6"),
            ("quality", first.item.response_b_id, "2"),
        ],
        confidence=5,
        rationale="OLGA-PRIVATE-RATIONALE",
        time_spent_ms=5,
    )
    second = judge_via_queue(labeler, pool, rationale="my second")
    assert Item.objects.get(pk=first.item_id).resolved
    assert not Item.objects.get(pk=second.item_id).resolved
    client.force_login(labeler)
    response = client.get(reverse("reviews:history"))
    assert response.status_code == 200
    rows = response.context["rows"]
    assert [r.judgment.item_id for r in rows] == [second.item_id, first.item_id]
    open_row, resolved_row = rows
    assert not open_row.resolved and all(a.final is None for a in open_row.answers)
    assert resolved_row.resolved
    finals = {(a.question, a.side): (a.yours, a.final) for a in resolved_row.answers}
    assert finals[("Which is better?", "")] == ("Response A", "Response A")
    html = html_of(response)
    assert "Awaiting other judgments" in html and "Resolved" in html
    assert "my first" in html and "my second" in html
    assert "OLGA-PRIVATE-RATIONALE" not in html and "olga" not in html
    # Blind: keys and model names never show.
    assert "model-a" not in html and "model-b" not in html


def test_history_shows_the_leads_rationale_after_an_adjudication(client, pool, labeler, lead):
    a = judge_via_queue(labeler, pool)
    item = a.item
    adjudication = Adjudication.objects.create(
        item=item,
        lead=Annotator.for_user(lead),
        rationale="B is better: A gives wrong facts.",
        rubric_version=a.rubric_version,
        settings_version=pool.settings,
    )
    right = right_of(a)
    Answer.objects.bulk_create(
        [
            Answer(adjudication=adjudication, criterion="preference", value=right.key),
            Answer(
                adjudication=adjudication, criterion="compliance", response=item.response_a, value="full_compliance"
            ),
            Answer(adjudication=adjudication, criterion="compliance", response=item.response_b, value="full_refusal"),
            Answer(adjudication=adjudication, criterion="quality", response=item.response_a, value="6"),
            Answer(adjudication=adjudication, criterion="quality", response=item.response_b, value="2"),
        ]
    )
    final_answers.refresh(pool, [item.id])
    assert Item.objects.get(pk=item.pk).resolved
    client.force_login(labeler)
    response = client.get(reverse("reviews:history"))
    row = response.context["rows"][0]
    assert row.adjudicated and row.lead_rationale == "B is better: A gives wrong facts."
    preference = next(x for x in row.answers if x.question == "Which is better?")
    assert (preference.yours, preference.final, preference.agrees) == ("Response A", "Response B", False)
    html = html_of(response)
    assert "Lead's rationale" in html and "B is better: A gives wrong facts." in html and "differs" in html


def test_history_withholds_a_response_answer_still_ahead_of_the_labeler(client, campaign, labeler):
    shared = {"key": "shared", "model": "m1", "text": "The shared answer"}
    import_pool(
        campaign,
        jsonl(
            pool_line("one", prompt_id="p", prompt="Q?", responses=[shared, {"key": "y", "model": "m2", "text": "Y"}]),
            pool_line("two", prompt_id="p", prompt="Q?", responses=[shared, {"key": "z", "model": "m3", "text": "Z"}]),
        ),
    )
    one = Item.objects.get(external_id="one")
    others = list(join(campaign, *(create_user(f"lab{n}", Role.LABELER, password=PASSWORD) for n in range(2))))
    for user in [labeler, others[0]]:
        a = queue.claim_next(campaign, user).assignment
        assert a.item == one
        queue.submit(
            user,
            a.uid,
            [
                ("preference", None, "shared"),
                ("compliance", one.response_a_id, "full_compliance"),
                ("compliance", one.response_b_id, "full_refusal"),
                ("quality", one.response_a_id, "6"),
                ("quality", one.response_b_id, "2"),
            ],
            confidence=None,
            rationale="",
            time_spent_ms=None,
        )
    assert Item.objects.get(pk=one.pk).resolved
    client.force_login(labeler)
    row = client.get(reverse("reviews:history")).context["rows"][0]
    shared_side = "Response A" if row.judgment.left_response_id == one.response_a_id else "Response B"
    for answer in row.answers:
        if answer.side == shared_side:  # the shared response waits for this labeler in item "two"
            assert answer.withheld and answer.final is None
        else:
            assert not answer.withheld and answer.final is not None
    # Once the labeler has judged item "two" too, nothing is ahead of them: the answer shows.
    two = queue.claim_next(campaign, labeler).assignment
    assert two.item.external_id == "two"
    queue.submit(
        labeler,
        two.uid,
        [
            ("preference", None, "shared"),
            ("compliance", two.item.response_a_id, "full_compliance"),
            ("compliance", two.item.response_b_id, "full_refusal"),
            ("quality", two.item.response_a_id, "6"),
            ("quality", two.item.response_b_id, "2"),
        ],
        confidence=None,
        rationale="",
        time_spent_ms=None,
    )
    rows = client.get(reverse("reviews:history")).context["rows"]
    assert [r.judgment.item.external_id for r in rows] == ["two", "one"]
    assert not any(a.withheld for a in rows[1].answers)


def test_history_is_paginated(client, pool, labeler, monkeypatch):
    monkeypatch.setattr("reviews.views.labeler.HISTORY_PAGE_SIZE", 2)
    for _ in range(3):
        judge_via_queue(labeler, pool)
    client.force_login(labeler)
    first = client.get(reverse("reviews:history"))
    assert len(first.context["rows"]) == 2 and 'rel="next"' in html_of(first)
    second = client.get(reverse("reviews:history") + "?page=2")
    assert len(second.context["rows"]) == 1 and 'rel="prev"' in html_of(second)


def test_history_without_judgments_says_so(signed_in):
    assert "You have not judged anything yet." in html_of(signed_in.get(reverse("reviews:history")))


# -- home, access -----------------------------------------------------------------------------


def test_a_labelers_home_is_the_only_campaigns_next_item(signed_in, pool):
    response = signed_in.get("/", follow=True)
    assert response.redirect_chain == [(reverse("reviews:work_start"), 302), (work_url(pool), 302)]
    assert response.context["assignment"] is not None


def test_with_several_campaigns_the_labeler_picks_one(signed_in, pool, labeler):
    other = create_campaign("second", "Second campaign", PAIRWISE_ONLY)
    join(other, labeler)
    join(create_campaign("no-rubric", "Without rubric"), labeler)
    create_campaign("not-mine", "Not a member", PAIRWISE_ONLY)
    response = signed_in.get(reverse("reviews:work_start"))
    html = html_of(response)
    assert response.status_code == 200
    assert f'href="{work_url(pool)}" autofocus' in html and f'href="{work_url(other)}"' in html
    assert "Without rubric" not in html and "Not a member" not in html


def test_a_lead_can_label_too(client, pool, lead):
    client.force_login(lead)
    _, a = open_item(client, pool)
    assert client.post(lease_url("submit", a.uid), full_answers()).status_code == 302
    assert Judgment.objects.get().annotator.user == lead
    assert FeedbackEvent.objects.get(action=FeedbackEvent.Action.JUDGED).role == "lead"


GET_URLS = ["/work/", "/campaigns/demo/work/", "/history/"]
POST_ACTIONS = ["submit", "skip", "escalate", "renew"]


@pytest.mark.parametrize("url", GET_URLS + [f"/leases/{uuid.UUID(int=1)}/{a}" for a in POST_ACTIONS])
def test_anonymous_visitors_go_to_the_login_page(client, campaign, url):
    response = client.post(url) if "/leases/" in url else client.get(url)
    assert response.status_code == 302 and response.url.startswith("/accounts/login/?next=")


@pytest.mark.parametrize("url", GET_URLS + [f"/leases/{uuid.UUID(int=1)}/{a}" for a in POST_ACTIONS])
def test_users_without_a_role_get_403(client, campaign, outsider, url):
    client.force_login(outsider)
    response = client.post(url) if "/leases/" in url else client.get(url)
    assert response.status_code == 403


@pytest.mark.parametrize("action", POST_ACTIONS)
def test_lease_actions_take_only_post(signed_in, pool, action):
    _, a = open_item(signed_in, pool)
    assert signed_in.get(lease_url(action, a.uid)).status_code == 405
    a.refresh_from_db()
    assert a.status == Status.LIVE and Judgment.objects.count() == 0


@pytest.mark.parametrize("url", GET_URLS)
def test_labeler_pages_take_no_post(signed_in, campaign, url):
    assert signed_in.post(url).status_code == 405


def test_the_work_page_costs_a_bounded_number_of_queries(signed_in, pool, django_assert_max_num_queries):
    open_item(signed_in, pool)
    with django_assert_max_num_queries(22):
        open_item(signed_in, pool)
