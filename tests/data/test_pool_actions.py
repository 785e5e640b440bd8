"""Re-queueing: a resolved item asks for k more judgments, is served again, and leaves a trace."""

import pytest

from reviews.data import pool_actions
from reviews.data.importer import import_pool
from reviews.labeling import queue
from reviews.models import FeedbackEvent, Item
from scoring.jobs import rescore_in_foreground
from tests.conftest import jsonl, pool_line
from tests.labeling.test_queue import labelers
from tests.leads.test_escalation_rules import submit

pytestmark = pytest.mark.django_db


def judge(user, campaign, preference="left"):
    """Everyone prefers response A whatever side it is shown on: the votes agree, so the
    disagreement rule never takes the item out of the queue (sides are drawn at random)."""
    return submit(user, campaign, prefer="a")


@pytest.fixture
def resolved_item(campaign):
    import_pool(campaign, jsonl(pool_line("only")))
    people = labelers(5, campaign)
    judge(people[0], campaign, "left")
    judge(people[1], campaign, "left")
    item = Item.objects.get(external_id="only")
    return item, people


def _served(campaign, user):
    claim = queue.claim_next(campaign, user)
    return claim.assignment.item if claim.assignment else None


def test_a_resolved_item_is_not_served_until_it_is_requeued(campaign, admin, resolved_item):
    item, (first, _, third, fourth, fifth) = resolved_item
    # The two judgments agree: the item is resolved and k is reached.
    assert _served(campaign, third) is None

    count = pool_actions.requeue(campaign, [item.id], user=admin, reason="rubric v2", request_run=False)

    assert count == 1
    item.refresh_from_db()
    assert item.judgment_target == 4
    event = FeedbackEvent.objects.get(item=item, action=FeedbackEvent.Action.REQUEUED)
    assert event.actor == admin and event.feedback == {"reason": "rubric v2", "k": 2}
    # Served again, but never to a labeler who judged it already, and only up to k more.
    assert _served(campaign, first) is None
    judge(third, campaign)
    judge(fourth, campaign)
    assert _served(campaign, fifth) is None
    item.refresh_from_db()
    assert item.human_judgments == 4


def test_a_scoring_run_puts_requeued_items_back_in_the_active_set(campaign, admin, resolved_item):
    item, (_, _, third, _, _) = resolved_item
    run = rescore_in_foreground(campaign, trigger="test")
    assert not item.scores.get(run=run).selected

    pool_actions.requeue(campaign, [item.id], user=admin, reason="stale", request_run=False)
    run = rescore_in_foreground(campaign, trigger="test")

    assert item.scores.get(run=run).selected
    assert _served(campaign, third) == item


def test_items_of_another_campaign_are_left_alone(campaign, admin, resolved_item):
    from reviews.campaigns.setup import create_campaign

    other = create_campaign("other", "Other")
    item, _ = resolved_item
    assert pool_actions.requeue(other, [item.id], user=admin, reason="x", request_run=False) == 0
    item.refresh_from_db()
    assert item.judgment_target is None
