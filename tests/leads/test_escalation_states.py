"""The escalation state machine and adjudication: legal and illegal moves, claims under a race,
final answers from adjudications (revisions kept as history), dismissals and ambiguity notes."""

import threading

import pytest
from django.db import connection

from reviews.core.exceptions import DomainError
from reviews.core.roles import Role
from reviews.data.importer import import_pool
from reviews.leads import adjudication, escalation
from reviews.models import Adjudication, Escalation, FeedbackEvent, FinalAnswer, Item
from reviews.people.accounts import create_user
from tests.conftest import PASSWORD, jsonl, pool_line

Status = Escalation.Status


@pytest.fixture
def escalated(campaign, labeler):
    """One item escalated by a labeler (harmful content)."""
    import_pool(campaign, jsonl(pool_line("one"), pool_line("two")))
    item = Item.objects.get(external_id="one")
    e, created = escalation.open_escalation(item, reason="harmful", comment="dangerous advice", user=labeler)
    assert created
    return e


def answers(item, prefer="a", compliance_a="full_compliance"):
    chosen = item.response_a if prefer == "a" else item.response_b
    return [
        ("preference", None, chosen.key),
        ("compliance", item.response_a_id, compliance_a),
        ("compliance", item.response_b_id, "full_compliance"),
        ("quality", item.response_a_id, "6"),
        ("quality", item.response_b_id, 3),
    ]


@pytest.mark.django_db
class TestTransitions:
    def test_opening_takes_the_item_out_of_the_queue_and_records_it(self, escalated, labeler):
        assert Item.objects.get(pk=escalated.item_id).escalated
        event = FeedbackEvent.objects.get(action="escalated")
        assert (event.actor, event.role, event.feedback["reason"]) == (labeler, "labeler", "harmful")

    def test_a_lead_claims_then_resolves(self, escalated, lead):
        e = escalated.transition(Status.IN_REVIEW, user=lead)
        assert (e.status, e.claimed_by, e.claimed_at is not None) == ("in_review", lead, True)
        item = Item.objects.get(pk=e.item_id)
        adj = adjudication.adjudicate(item, lead, answers(item), rationale="A is right.", escalation=e)
        e.refresh_from_db()
        item.refresh_from_db()
        assert (e.status, e.resolution_note, e.closed_at is not None) == ("resolved", "A is right.", True)
        assert item.adjudicated and item.resolved and not item.escalated
        actions = list(FeedbackEvent.objects.filter(item=item).order_by("id").values_list("action", flat=True))
        assert actions == ["escalated", "escalation_claimed", "adjudicated"]
        adjudicated = FeedbackEvent.objects.get(action="adjudicated")
        assert adjudicated.feedback["adjudication"] == adj.id and adjudicated.settings_version == item.campaign.settings
        assert adjudicated.rubric_version == item.campaign.rubric_version()

    def test_illegal_moves_raise_and_change_nothing(self, escalated, lead):
        with pytest.raises(escalation.IllegalTransition, match="cannot be resolved"):
            escalated.transition(Status.RESOLVED, user=lead)
        with pytest.raises(escalation.IllegalTransition, match="cannot be dismissed"):
            escalation.dismiss(escalated, lead, "not a problem")
        item = Item.objects.get(pk=escalated.item_id)
        with pytest.raises(escalation.IllegalTransition):
            adjudication.adjudicate(item, lead, answers(item), rationale="r", escalation=escalated)
        assert not Adjudication.objects.exists() and not FinalAnswer.objects.exists()
        escalated.refresh_from_db()
        assert escalated.status == Status.OPEN
        escalation.claim(escalated, lead)
        escalation.dismiss(escalated, lead, "fine as it is")
        with pytest.raises(escalation.IllegalTransition, match="dismissed: it cannot be claimed"):
            escalation.claim(escalated, lead)

    def test_labelers_cannot_move_escalations(self, escalated, labeler):
        with pytest.raises(escalation.EscalationError, match="Only leads"):
            escalation.claim(escalated, labeler)

    def test_another_lead_cannot_act_on_a_claimed_escalation(self, escalated, lead):
        other = create_user("lia", Role.LEAD, password=PASSWORD)
        escalation.claim(escalated, lead)
        with pytest.raises(escalation.ClaimConflict, match="leo claimed this escalation"):
            escalation.claim(escalated, other)
        with pytest.raises(escalation.ClaimConflict):
            escalation.dismiss(escalated, other, "mine now")
        with pytest.raises(escalation.ClaimConflict):
            escalation.release(escalated, other)

    def test_an_admin_may_release_a_claim_left_behind(self, escalated, lead, admin):
        escalation.claim(escalated, lead)
        e = escalation.release(escalated, admin)
        assert (e.status, e.claimed_by) == ("open", None)
        assert Item.objects.get(pk=e.item_id).escalated
        assert FeedbackEvent.objects.filter(action="escalation_released", actor=admin).exists()

    def test_dismissing_needs_a_reason_and_returns_the_item_to_the_queue(self, escalated, lead):
        escalation.claim(escalated, lead)
        with pytest.raises(escalation.EscalationError, match="reason"):
            escalation.dismiss(escalated, lead, "   ")
        e = escalation.dismiss(escalated, lead, "The response is a quote, not advice.")
        assert (e.status, e.resolution_note) == ("dismissed", "The response is a quote, not advice.")
        assert not Item.objects.get(pk=e.item_id).escalated
        event = FeedbackEvent.objects.get(action="escalation_dismissed")
        assert event.feedback["note"] == "The response is a quote, not advice." and event.actor == lead

    def test_a_closed_escalation_can_be_reopened(self, escalated, lead):
        escalation.claim(escalated, lead)
        escalation.dismiss(escalated, lead, "fine")
        e = escalation.reopen(escalated, lead, "second thoughts")
        assert (e.status, e.closed_at, e.claimed_by) == ("open", None, None)
        assert Item.objects.get(pk=e.item_id).escalated


@pytest.mark.django_db
class TestAdjudication:
    def test_incomplete_or_invalid_answers_write_nothing_and_say_why(self, escalated, lead):
        e = escalation.claim(escalated, lead)
        item = Item.objects.get(pk=e.item_id)
        bad = [*answers(item)[:2], ("quality", item.response_a_id, "9"), ("nonsense", None, "x")]
        with pytest.raises(adjudication.AdjudicationError) as info:
            adjudication.adjudicate(item, lead, bad, rationale="", rubric_ambiguous=True, escalation=e)
        text = " ".join(info.value.errors)
        assert "“Quality?” (Response A)" in text and "outside 1..7" in text and "nonsense" in text
        assert "Write a rationale" in text and "rubric is ambiguous" in text
        assert not Adjudication.objects.exists()
        assert Escalation.objects.get().status == Status.IN_REVIEW

    def test_questions_left_out_keep_the_labelers_votes_but_one_answer_is_needed(self, escalated, lead):
        e = escalation.claim(escalated, lead)
        item = Item.objects.get(pk=e.item_id)
        with pytest.raises(adjudication.AdjudicationError, match="at least one final answer"):
            adjudication.adjudicate(item, lead, [], rationale="Nothing?", escalation=e)
        adjudication.adjudicate(item, lead, answers(item)[:1], rationale="Only the preference.", escalation=e)
        assert list(FinalAnswer.objects.values_list("criterion", flat=True)) == ["preference"]
        assert not Item.objects.get(pk=item.pk).resolved  # the other questions are still open

    def test_a_revision_is_a_new_adjudication_and_the_latest_decides(self, escalated, lead):
        e = escalation.claim(escalated, lead)
        item = Item.objects.get(pk=e.item_id)
        first = adjudication.adjudicate(item, lead, answers(item, "a"), rationale="A.", escalation=e)
        again = adjudication.revise(item, lead, "B was right after all")
        assert again.pk != e.pk and again.status == Status.IN_REVIEW and again.rules[0]["rule"] == "revision"
        second = adjudication.adjudicate(item, lead, answers(item, "b"), rationale="B.", escalation=again)
        assert FinalAnswer.objects.get(item=item, criterion="preference").value == item.response_b.key
        assert [h.adjudication for h in adjudication.history(item)] == [second, first]
        assert FeedbackEvent.objects.filter(action="adjudicated").last().feedback["revision_of"] == first.id

    def test_the_ambiguity_note_reaches_the_rubric_pages(self, escalated, lead, campaign):
        e = escalation.claim(escalated, lead)
        item = Item.objects.get(pk=e.item_id)
        adjudication.adjudicate(
            item,
            lead,
            answers(item),
            rationale="Close call.",
            rubric_ambiguous=True,
            ambiguity_note="Is quoting a harmful text compliance?",
            escalation=e,
        )
        (note,) = adjudication.ambiguity_notes(campaign.rubric, open_only=True)
        assert note.ambiguity_note == "Is quoting a harmful text compliance?" and note.item == item

    def test_a_lead_can_adjudicate_without_an_escalation(self, campaign, lead):
        import_pool(campaign, jsonl(pool_line("solo")))
        item = Item.objects.get()
        adjudication.adjudicate(item, lead, answers(item), rationale="Decided directly.")
        item.refresh_from_db()
        assert item.resolved and item.adjudicated
        assert FeedbackEvent.objects.get(action="adjudicated").actor == lead

    def test_labelers_cannot_adjudicate(self, campaign, labeler):
        import_pool(campaign, jsonl(pool_line("solo")))
        item = Item.objects.get()
        with pytest.raises(DomainError, match="Only leads"):
            adjudication.adjudicate(item, labeler, answers(item), rationale="me")


@pytest.mark.django_db(transaction=True)
def test_two_leads_racing_to_claim_one_escalation_one_wins(campaign):
    import_pool(campaign, jsonl(pool_line("contested")))
    labeler = create_user("lab", Role.LABELER, password=PASSWORD)
    e, _ = escalation.open_escalation(Item.objects.get(), reason="ambiguous", comment="", user=labeler)
    leads = [create_user(f"lead{n}", Role.LEAD, password=PASSWORD) for n in range(4)]
    won, lost, errors = [], [], []
    barrier = threading.Barrier(len(leads))

    def claim(user):
        try:
            barrier.wait()
            escalation.claim(Escalation.objects.get(pk=e.pk), user)
            won.append(user)
        except escalation.ClaimConflict as exc:
            lost.append(str(exc))
        except Exception as exc:  # surfaced below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=claim, args=(u,)) for u in leads]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(won) == 1 and len(lost) == 3
    assert all(f"{won[0].username} claimed this escalation" in message for message in lost)
    e.refresh_from_db()
    assert (e.status, e.claimed_by) == ("in_review", won[0])
    assert FeedbackEvent.objects.filter(action="escalation_claimed").count() == 1
