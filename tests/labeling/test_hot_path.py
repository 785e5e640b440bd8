"""The labeling cycle's hot path: its query budget, and the shortcuts that keep it there doing
exactly what the general code does (final answers written incrementally, the escalation rules
decided from what the refresh read, versions from the process's cache, roles with the user)."""

import random
import re

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from reviews.campaigns.setup import create_campaign
from reviews.core.roles import Role, role_of
from reviews.data.importer import import_pool
from reviews.labeling import queue
from reviews.leads import adjudication, escalation, final_answers
from reviews.models import Assignment, CampaignSettings, FinalAnswer, Item, Judgment
from reviews.models.campaigns import _IMMUTABLE, immutable
from reviews.people.accounts import create_user
from scoring import runs
from scoring.jobs import rescore_in_foreground
from tests.conftest import PASSWORD, RUBRIC, join, jsonl, pool_line
from tests.labeling.test_queue import answers_for, labelers

# The budget: at most this many queries (BEGIN and COMMIT, savepoints included) for
# "next item" and for "submit".
QUERY_BUDGET = 12

FORM = {
    "q.preference": "left",
    "q.compliance.left": "full_compliance",
    "q.compliance.right": "full_compliance",
    "q.quality.left": "4",
    "q.quality.right": "4",
    "confidence": "4",
    "rationale": "",
    "time_spent_ms": "5000",
}


@pytest.mark.django_db(transaction=True)
def test_next_and_submit_each_stay_within_the_query_budget(client, campaign, labeler, django_assert_max_num_queries):
    # The common worst case: a scoring run in force, a budget cap, and the labeler's second cycle.
    import_pool(campaign, jsonl(*(pool_line(f"item-{n}") for n in range(30))))
    campaign.update_settings(budget_total=1000)
    client.force_login(labeler)
    work = reverse("reviews:work", args=[campaign.slug])
    first = client.get(work).context["assignment"]
    client.post(reverse("reviews:lease_submit", args=[str(first.uid)]), FORM)
    rescore_in_foreground(campaign, "test")  # its judgment mark: the first judgment

    with django_assert_max_num_queries(QUERY_BUDGET):
        page = client.get(work)
    lease = page.context["assignment"]
    assert lease.item_id != first.item_id and lease.reason == Assignment.Reason.UTILITY
    with django_assert_max_num_queries(QUERY_BUDGET):
        done = client.post(reverse("reviews:lease_submit", args=[str(lease.uid)]), FORM)
    assert done.status_code == 302 and done["Location"] == work
    judgment = Judgment.objects.get(assignment=lease)
    campaign.refresh_from_db()
    settings_in_force = CampaignSettings.objects.filter(campaign=campaign).order_by("-number").first()
    assert (judgment.settings_version, judgment.scoring_run_id) == (settings_in_force, campaign.scoring_run_id)
    assert Item.objects.get(pk=lease.item_id).human_judgments == 1


@pytest.mark.django_db
def test_a_full_candidate_locked_without_a_savepoint_restarts_the_claim(campaign):
    if not connection.features.has_select_for_update_skip_locked:
        pytest.skip("SQLite has no row locks: its claimers are serialized and never hold a candidate's lock")
    import_pool(campaign, jsonl(pool_line("only")))
    item = Item.objects.get()
    for user in labelers(2, campaign):
        queue.claim_next(campaign, user)  # k = 2 leases: the item is full
    now = timezone.now()
    candidates = Item.objects.filter(id=item.id).values_list("id")
    with pytest.raises(queue._Retry):
        queue._lock_first(candidates, 2, now, careful=False)
    assert queue._lock_first(candidates, 2, now, careful=True) is None


# -- final answers: written incrementally, equal to a recompute from scratch -----------------


def _finals():
    return sorted(
        FinalAnswer.objects.values_list("criterion", "item_id", "response_id", "value", "basis", "human_votes")
    )


def _flags():
    return sorted(Item.objects.values_list("id", "resolved", "adjudicated", "human_judgments"))


@pytest.mark.django_db
def test_incremental_final_answers_equal_a_recompute_and_an_unchanged_refresh_writes_nothing(campaign, lead):
    # Three items over four responses (shared between items), k = 2, judged at random, one adjudicated.
    responses = [("r1", "r2"), ("r2", "r3"), ("r3", "r4")]
    lines = [
        pool_line(
            f"item-{n}",
            prompt_id="p",
            prompt="Which is better?",
            responses=[{"key": a, "model": a, "text": f"text {a}"}, {"key": b, "model": b, "text": f"text {b}"}],
        )
        for n, (a, b) in enumerate(responses)
    ]
    import_pool(campaign, jsonl(*lines))
    rng = random.Random(7)
    people = labelers(6, campaign)
    for step in range(10):
        if step == 5:  # a lead decides one response's compliance midway
            item = Item.objects.order_by("id").first()
            answer = [("compliance", item.response_b_id, "full_refusal")]
            adjudication.adjudicate(item, lead, answer, rationale="The lead decides.")
        user = people[step % len(people)]
        claim = queue.claim_next(campaign, user)
        if claim.assignment is None:
            continue
        answers = [
            (c, r, rng.choice(["full_compliance", "full_refusal"]) if c == "compliance" else v)
            for c, r, v in answers_for(claim.assignment, rng.choice(["left", "right"]))
        ]
        queue.submit(user, claim.assignment.uid, answers, confidence=rng.randint(1, 5), rationale="", time_spent_ms=1)
    incremental, flags = _finals(), _flags()
    assert incremental  # some targets were decided on the way

    with CaptureQueriesContext(connection) as again:
        final_answers.refresh(campaign, Item.objects.values_list("id", flat=True))
    writes = [q["sql"] for q in again.captured_queries if q["sql"].split()[0] in ("INSERT", "DELETE", "UPDATE")]
    assert writes == [] and (_finals(), _flags()) == (incremental, flags)

    FinalAnswer.objects.all().delete()
    Item.objects.update(resolved=False, adjudicated=False, human_judgments=0)
    final_answers.refresh(campaign, Item.objects.values_list("id", flat=True))
    assert (_finals(), _flags()) == (incremental, flags)


# -- the escalation rules, decided from the refresh's tally ---------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("seed", range(6))
def test_the_rules_shortcut_agrees_with_the_rules_over_the_pool(campaign, seed):
    """fired_rules (no query) finds exactly the rules, with their records, that evaluate (the pool-wide rules) finds."""
    rng = random.Random(seed)
    campaign.update_settings(overlap_k=rng.choice([1, 2, 3]), tau_disagree=rng.choice([0.3, 0.5, 0.9]), tau_conf=2.5)
    import_pool(
        campaign,
        jsonl(*(pool_line(f"item-{n}", risk_prior=rng.choice([None, 0.2, 0.95])) for n in range(6))),
    )
    people = labelers(4, campaign)
    fired = []
    for _ in range(12):
        user = rng.choice(people)
        claim = queue.claim_next(campaign, user)
        if claim.assignment is None:
            continue
        item = claim.assignment.item
        answers = answers_for(claim.assignment, rng.choice(["left", "right"]))
        queue.submit(user, claim.assignment.uid, answers, confidence=rng.randint(1, 5), rationale="", time_spent_ms=1)
        item.refresh_from_db()
        escalated = item.escalated
        # Compare both ways: an item the submit escalated is looked at as if it were not.
        Item.objects.filter(pk=item.pk).update(escalated=False)
        item.escalated = False
        tally = final_answers.refresh(campaign, [item.id])
        pool = escalation.evaluate(campaign, [item.id])
        expected = pool[item.id][0] if item.id in pool else []
        assert escalation.fired_rules(campaign, item, tally, item.risk_prior) == expected
        assert escalated == bool(expected)
        fired.append(bool(expected))
        Item.objects.filter(pk=item.pk).update(escalated=escalated)
    assert True in fired  # each seed has items where a rule fires (and seeds 0-4 some where none does)


# -- what a request reads once: the user's role and annotator, immutable versions -----------


@pytest.mark.django_db
def test_the_role_and_the_annotator_come_with_the_user_and_a_role_change_applies_next_request(client, campaign):
    user = create_user("rita", Role.LABELER, password=PASSWORD)
    join(campaign, user)
    client.force_login(user)
    work = reverse("reviews:work", args=[campaign.slug])
    page = client.get(work)
    loaded = page.wsgi_request.user
    assert loaded.role_names == {"labeler"} and loaded.reviews_annotator_id is not None
    with CaptureQueriesContext(connection) as role_check:
        assert role_of(loaded) == Role.LABELER
    assert len(role_check) == 0
    user.groups.clear()
    assert client.get(work).status_code == 403  # the next request sees the role taken away


@pytest.mark.django_db(transaction=True)
def test_an_immutable_row_read_in_a_rolled_back_transaction_is_not_kept():
    campaign = create_campaign("c", "C", RUBRIC)
    kept = campaign.settings
    _IMMUTABLE.clear()
    assert immutable(CampaignSettings, kept.id) == kept  # autocommit: kept at once
    assert (CampaignSettings, kept.id) in _IMMUTABLE
    with transaction.atomic():
        rolled_back = campaign.update_settings(lease_minutes=30)
        immutable(CampaignSettings, rolled_back.id)
        transaction.set_rollback(True)
    assert (CampaignSettings, rolled_back.id) not in _IMMUTABLE


@pytest.mark.django_db
def test_the_judgment_trigger_counts_nothing_while_too_few_ids_passed_the_mark(campaign, django_assert_num_queries):
    campaign.update_settings(rescore_every=50)
    campaign.settings  # noqa: B018 - loaded before counting
    with django_assert_num_queries(0):
        assert runs.maybe_rescore_after_judgments(campaign, judgment_id=60, last_run=("succeeded", 11)) is None
    with django_assert_num_queries(1):  # 60 ids past the mark: count this campaign's judgments
        assert runs.maybe_rescore_after_judgments(campaign, judgment_id=60, last_run=(None, None)) is None


@pytest.mark.django_db
def test_fresh_pages_reuse_their_fragments_and_a_refused_form_is_rendered_afresh(client, campaign, labeler):
    from reviews.labeling.forms import _QUESTION_HTML
    from reviews.templatetags.review_forms import _MEMO

    import_pool(campaign, jsonl(pool_line("one"), pool_line("two")))
    client.force_login(labeler)
    work = reverse("reviews:work", args=[campaign.slug])
    first = client.get(work)
    version = first.context["assignment"].rubric_version
    assert {key[:2] for key in _QUESTION_HTML} == {(version.pk, version.published_at)}
    assert ("shortcuts", version.pk, version.published_at) in _MEMO and ("escalate-fields",) in _MEMO
    lease = first.context["assignment"]
    refused = client.post(reverse("reviews:lease_submit", args=[str(lease.uid)]), {"q.preference": "right"})
    html = refused.content.decode()
    assert refused.status_code == 400
    assert re.search(r'name="q\.preference" value="right"[^>]*\bchecked\b', html)  # the answer given, kept
    assert "has-error" in html and "Choose an answer for Response A" in html
