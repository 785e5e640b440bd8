"""The labelers' queue: claiming leases, submitting, skipping, escalating, under races and bad input."""

import random
import threading
import uuid
from datetime import timedelta

import pytest
from django.db import connection

from reviews.core.roles import Role
from reviews.data.importer import import_pool
from reviews.labeling import queue
from reviews.models import (
    Assignment,
    Campaign,
    Escalation,
    FeedbackEvent,
    FinalAnswer,
    Item,
    ItemScore,
    Judgment,
    ScoringRun,
)
from reviews.people.accounts import create_user
from tests.conftest import PASSWORD, join, jsonl, pool_line

Status = Assignment.Status


@pytest.fixture
def pool(campaign):
    import_pool(campaign, jsonl(*(pool_line(f"item-{n}") for n in range(5))))
    return campaign


def labelers(n, *campaigns):
    """n new labelers, members of the given campaigns (by default of every campaign there is)."""
    users = [create_user(f"lab{i}", Role.LABELER, password=PASSWORD) for i in range(n)]
    for campaign in campaigns or Campaign.objects.all():
        join(campaign, *users)
    return users


def answers_for(assignment, preference="left"):
    item = assignment.item
    left = assignment.left_response
    right = item.response_b if left == item.response_a else item.response_a
    chosen = left if preference == "left" else right
    return [
        ("preference", None, chosen.key),
        ("compliance", item.response_a_id, "full_compliance"),
        ("compliance", item.response_b_id, "full_compliance"),
        ("quality", item.response_a_id, "5"),
        ("quality", item.response_b_id, "4"),
    ]


def judge(user, campaign, preference="left"):
    claim = queue.claim_next(campaign, user)
    assert claim.state == "item"
    queue.submit(
        user,
        claim.assignment.uid,
        answers_for(claim.assignment, preference),
        confidence=4,
        rationale="",
        time_spent_ms=1200,
    )
    return claim.assignment


@pytest.mark.django_db
class TestClaim:
    def test_before_any_scoring_run_items_come_in_import_order(self, pool, labeler):
        claim = queue.claim_next(pool, labeler)
        a = claim.assignment
        assert (claim.state, a.item.external_id, a.reason, a.status) == ("item", "item-0", "order", Status.LIVE)
        assert a.left_response_id in (a.item.response_a_id, a.item.response_b_id)
        assert a.rubric_version == pool.rubric_version() and a.settings_version == pool.settings
        assert timedelta(minutes=14) < a.expires_at - a.created_at <= timedelta(minutes=15)

    def test_asking_again_renews_the_open_lease(self, pool, labeler):
        first = queue.claim_next(pool, labeler).assignment
        again = queue.claim_next(pool, labeler).assignment
        assert again.pk == first.pk and again.expires_at >= first.expires_at
        assert Assignment.objects.count() == 1

    def test_left_and_right_are_drawn_per_assignment(self, campaign):
        import_pool(campaign, jsonl(pool_line("one")))
        item = Item.objects.get()
        sides = []
        for n, user in enumerate(labelers(8, campaign)):
            claim = queue.claim_next(campaign, user, rng=random.Random(n))
            assert claim.assignment.left_response_id == random.Random(n).choice(
                [item.response_a_id, item.response_b_id]
            )
            sides.append(claim.assignment.left_response_id)
            queue.skip(user, claim.assignment.uid)
        assert set(sides) == {item.response_a_id, item.response_b_id}

    def test_no_more_than_k_labelers_hold_or_judged_an_item(self, pool):
        a, b, c = labelers(3, pool)
        first = queue.claim_next(pool, a).assignment.item
        assert queue.claim_next(pool, b).assignment.item == first  # k = 2: a second labeler may share it
        assert queue.claim_next(pool, c).assignment.item != first

    def test_a_labeler_never_gets_the_same_item_twice(self, pool, labeler):
        seen = []
        for _ in range(3):
            seen.append(judge(labeler, pool).item_id)
        claim = queue.claim_next(pool, labeler)
        queue.skip(labeler, claim.assignment.uid)
        seen.append(claim.assignment.item_id)
        assert len(set(seen)) == 4
        assert queue.claim_next(pool, labeler).assignment.item_id not in seen

    def test_an_expired_lease_frees_the_item(self, pool):
        a, b, c = labelers(3, pool)
        held = queue.claim_next(pool, a).assignment
        queue.claim_next(pool, b)
        Assignment.objects.filter(pk=held.pk).update(expires_at=held.created_at - timedelta(seconds=1))
        assert queue.claim_next(pool, c).assignment.item == held.item

    def test_escalated_resolved_and_excluded_items_are_not_served(self, pool, labeler):
        Item.objects.filter(external_id="item-0").update(escalated=True)
        Item.objects.filter(external_id="item-1").update(resolved=True)
        Item.objects.filter(external_id="item-2").update(excluded=True)
        assert queue.claim_next(pool, labeler).assignment.item.external_id == "item-3"

    def test_it_says_when_the_queue_is_empty_or_the_budget_spent(self, campaign, labeler, lead):
        assert queue.claim_next(campaign, labeler).state == "empty"
        import_pool(campaign, jsonl(pool_line("only")))
        campaign.update_settings(budget_total=1)
        judge(labeler, campaign)
        claim = queue.claim_next(campaign, lead)
        assert (claim.assignment, claim.state) == (None, "budget_spent")
        assert "budget is spent" in claim.message
        campaign.update_settings(budget_total=None, budget_daily=1)
        assert queue.claim_next(campaign, lead).state == "daily_budget_spent"

    def test_the_queue_follows_the_scoring_runs_ranks(self, pool, labeler):
        run = ScoringRun.objects.create(campaign=pool, status="succeeded")
        items = list(Item.objects.order_by("id"))
        for rank, (item, audit) in enumerate([(items[3], False), (items[1], True)]):
            ItemScore.objects.create(
                run=run,
                item=item,
                risk=0.1,
                uncertainty=1,
                diversity=1,
                utility=2.1,
                selected=True,
                audit=audit,
                selection_probability=0.25 if audit else 1.0,
                rank=rank,
            )
        ItemScore.objects.create(run=run, item=items[0], risk=0, uncertainty=0, diversity=0, utility=0)
        pool.scoring_run = run
        pool.save()
        first = queue.claim_next(pool, labeler).assignment
        assert (first.item, first.reason, first.selection_probability, first.scoring_run) == (
            items[3],
            "utility",
            1.0,
            run,
        )
        queue.skip(labeler, first.uid)
        second = queue.claim_next(pool, labeler).assignment
        assert (second.item, second.reason, second.selection_probability) == (items[1], "audit", 0.25)
        queue.skip(labeler, second.uid)
        assert queue.claim_next(pool, labeler).state == "empty"  # items outside the active set wait


@pytest.mark.django_db
class TestSubmit:
    def test_a_submission_records_the_judgment_with_its_context(self, pool, labeler):
        claim = queue.claim_next(pool, labeler)
        a = claim.assignment
        judgment = queue.submit(labeler, a.uid, answers_for(a), confidence=5, rationale="clear", time_spent_ms=900)
        assert (judgment.kind, judgment.source, judgment.confidence, judgment.time_spent_ms) == (
            "human",
            "app",
            1.0,
            900,
        )
        assert judgment.left_response == a.left_response and judgment.assignment == a
        assert judgment.rubric_version == a.rubric_version and judgment.settings_version == pool.settings
        assert judgment.answers.count() == 5
        a.refresh_from_db()
        assert a.status == Status.SUBMITTED and a.ended_at is not None
        event = FeedbackEvent.objects.get(action=FeedbackEvent.Action.JUDGED)
        assert event.feedback["shown_left"] == a.left_response.key
        assert event.feedback["time_spent_ms"] == 900 and event.role == "labeler"
        assert event.rubric_version == a.rubric_version and event.settings_version == a.settings_version
        assert Item.objects.get(pk=a.item_id).human_judgments == 1

    def test_a_double_submit_records_one_judgment(self, pool, labeler):
        a = queue.claim_next(pool, labeler).assignment
        queue.submit(labeler, a.uid, answers_for(a), confidence=None, rationale="", time_spent_ms=None)
        with pytest.raises(queue.AlreadyDone):
            queue.submit(labeler, a.uid, answers_for(a), confidence=None, rationale="", time_spent_ms=None)
        assert Judgment.objects.count() == 1
        assert Judgment.objects.get().confidence is None

    def test_a_foreign_forged_or_expired_lease_writes_nothing(self, pool, labeler, lead):
        a = queue.claim_next(pool, labeler).assignment
        for user, uid in ((lead, a.uid), (labeler, uuid.uuid4()), (labeler, "not-a-uuid")):
            with pytest.raises(queue.LeaseError, match="not assigned to you"):
                queue.submit(user, uid, answers_for(a), confidence=3, rationale="", time_spent_ms=1)
        Assignment.objects.filter(pk=a.pk).update(expires_at=a.created_at)
        with pytest.raises(queue.LeaseError, match="expired"):
            queue.submit(labeler, a.uid, answers_for(a), confidence=3, rationale="", time_spent_ms=1)
        assert Judgment.objects.count() == 0
        assert not FeedbackEvent.objects.filter(action=FeedbackEvent.Action.JUDGED).exists()

    def test_two_agreeing_labelers_resolve_the_item(self, pool):
        a, b = labelers(2, pool)
        first = judge(a, pool, "left")
        second_claim = queue.claim_next(pool, b).assignment
        assert second_claim.item == first.item
        # Agree on the same response whatever side each saw it on.
        chosen = first.left_response
        preference = "left" if second_claim.left_response == chosen else "right"
        queue.submit(
            b, second_claim.uid, answers_for(second_claim, preference), confidence=4, rationale="", time_spent_ms=1
        )
        item = Item.objects.get(pk=first.item_id)
        assert item.resolved and item.human_judgments == 2
        assert FinalAnswer.objects.get(item=item, criterion="preference").value == chosen.key

    def test_skip_and_escalate_end_the_lease_and_leave_a_trace(self, pool, labeler):
        a = queue.claim_next(pool, labeler).assignment
        queue.skip(labeler, a.uid, time_spent_ms=50)
        b = queue.claim_next(pool, labeler).assignment
        escalation = queue.escalate(labeler, b.uid, reason="ambiguous", comment="policy unclear")
        assert (escalation.status, escalation.reason, escalation.opened_by) == ("open", "ambiguous", labeler)
        assert escalation.rules == [{"rule": "manual", "value": "ambiguous", "threshold": None}]
        assert Item.objects.get(pk=b.item_id).escalated
        assert list(Assignment.objects.order_by("id").values_list("status", flat=True)) == ["skipped", "escalated"]
        actions = list(FeedbackEvent.objects.filter(actor=labeler).order_by("id").values_list("action", flat=True))
        assert actions == ["skipped", "escalated"]
        with pytest.raises(queue.DomainError, match="reason"):
            queue.escalate(labeler, queue.claim_next(pool, labeler).assignment.uid, reason="bored", comment="")
        assert Escalation.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_claimers_racing_for_the_last_places_never_exceed_k(campaign):
    import_pool(campaign, jsonl(pool_line("last")))
    users = labelers(6, campaign)
    results, errors = [], []
    barrier = threading.Barrier(len(users))

    def claim(user):
        try:
            barrier.wait()
            results.append(queue.claim_next(campaign, user).state)
        except Exception as exc:  # surfaced below: a thread's exception would otherwise vanish
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=claim, args=(u,)) for u in users]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(results) == ["empty"] * 4 + ["item"] * 2
    assert Assignment.objects.filter(status=Status.LIVE).count() == 2


@pytest.mark.django_db
def test_every_n_submitted_judgments_request_a_rescoring_run(pool, settings):
    settings.RQ_QUEUES = {"default": {"URL": "redis://127.0.0.1:1/0"}}  # unreachable: recorded, not lost
    pool.update_settings(rescore_every=2)
    a, b, c = labelers(3, pool)
    judge(a, pool)
    assert not ScoringRun.objects.exists()
    judge(b, pool)
    run = ScoringRun.objects.get()
    assert run.trigger == "2 judgments" and run.judgment_mark == Judgment.objects.latest("id").id
    judge(c, pool)  # one past the mark: not yet
    assert ScoringRun.objects.count() == 1
