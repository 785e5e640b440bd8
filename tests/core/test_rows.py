"""reviews.core.rows: joined rows as model instances, and the single-row insert of the hot path."""

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from reviews.core.rows import Joined, insert_row
from reviews.data.importer import import_pool
from reviews.labeling import queue
from reviews.models import Assignment, FeedbackEvent, Item, Response
from tests.conftest import jsonl, pool_line

pytestmark = pytest.mark.django_db


def test_joined_rows_come_back_as_the_orm_would_give_them(campaign, labeler):
    import_pool(campaign, jsonl(pool_line("one", metadata={"k": [1, 2]})))
    lease = queue.claim_next(campaign, labeler).assignment
    query = Joined(
        (("a", Assignment), ("i", Item), ("r", Response)),
        "FROM reviews_assignment a JOIN reviews_item i ON i.id = a.item_id "
        "LEFT JOIN reviews_response r ON r.id = i.response_a_id AND r.key = %s WHERE a.id = %s",
        extra=("i.id + 1",),
    )
    ((assignment, item, response, plus_one),) = query.fetch(["a", lease.id])
    orm = Assignment.objects.get(pk=lease.id)
    # Converted like the ORM's values: a UUID, an aware datetime, a JSON object, booleans.
    assert (assignment.uid, assignment.expires_at, assignment.status) == (orm.uid, orm.expires_at, orm.status)
    assert isinstance(assignment.uid, uuid.UUID) and assignment.expires_at.tzinfo is not None
    assert item.metadata == {"k": [1, 2]} and item.excluded is False and plus_one == item.id + 1
    assert response.key == "a" and not assignment._state.adding
    # An outer join that found nothing gives None for that table.
    ((_, _, missing, _),) = query.fetch(["no-such-key", lease.id])
    assert missing is None


def test_insert_row_writes_defaults_and_returns_the_saved_instance(campaign, labeler):
    import_pool(campaign, jsonl(pool_line("one")))
    item = Item.objects.get()
    before = timezone.now()
    event = insert_row(FeedbackEvent, campaign_id=campaign.id, item_id=item.id, action="judged", feedback={"x": 1})
    stored = FeedbackEvent.objects.get(pk=event.pk)
    assert (stored.feedback, stored.action, stored.item_id, stored.role) == ({"x": 1}, "judged", item.id, "")
    assert before <= stored.created_at <= timezone.now() + timedelta(seconds=1)  # the model's default
    assert event.created_at == stored.created_at and not event._state.adding
