"""Gold items: items with known answers, mixed into the labelers' queue at the campaign's gold rate.

The known answers are stored on the item as a list in the import format
(`[{"criterion", "response"?, "value"}]`, see reviews.data.pool_format.parse_gold), which
reviews.labeling.progress.gold_answer_map reads to give each labeler an accuracy figure.
"""

from django.db import transaction

from reviews.core.exceptions import DomainError
from reviews.data.pool_format import parse_gold
from reviews.models import FeedbackEvent, Item


class GoldError(DomainError):
    """Gold answers that do not fit the item or the campaign's rubric."""

    def __init__(self, errors: list[str]):
        self.errors = errors
        super().__init__("; ".join(errors))


def validate_gold(item: Item, answers) -> list[dict]:
    """Check known answers against the campaign's published rubric and the item's responses."""
    version = item.campaign.rubric_version()
    keys = (item.response_a.key, item.response_b.key)
    errors: list[str] = []
    gold = parse_gold(answers, version.parsed if version else None, keys, errors)
    if gold is None:
        raise GoldError(errors)
    return gold


def _record(item: Item, user, feedback: dict) -> FeedbackEvent:
    return FeedbackEvent.record(item.campaign, FeedbackEvent.Action.GOLD_CHANGED, feedback, actor=user, item=item)


def mark_gold(item: Item, answers, *, user) -> Item:
    """Make the item gold with these known answers (replacing earlier ones); one GOLD_CHANGED event."""
    gold = validate_gold(item, answers)
    with transaction.atomic():
        locked = Item.objects.select_for_update().get(pk=item.pk)
        previous = locked.gold_answers if locked.is_gold else None
        if locked.is_gold and previous == gold:
            return locked
        locked.is_gold, locked.gold_answers = True, gold
        locked.save(update_fields=["is_gold", "gold_answers"])
        _record(item, user, {"gold": True, "answers": gold, "previous": previous})
    item.is_gold, item.gold_answers = True, gold
    return item


def unmark_gold(item: Item, *, user) -> Item:
    """The item is an ordinary item again; its former answers stay in the feedback log."""
    with transaction.atomic():
        locked = Item.objects.select_for_update().get(pk=item.pk)
        if not locked.is_gold:
            return locked
        previous = locked.gold_answers
        locked.is_gold, locked.gold_answers = False, None
        locked.save(update_fields=["is_gold", "gold_answers"])
        _record(item, user, {"gold": False, "previous": previous})
    item.is_gold, item.gold_answers = False, None
    return item


def gold_problems(item: Item) -> list[str]:
    """Why the item's stored gold answers no longer fit the rubric in force (after a publish), if they don't."""
    try:
        validate_gold(item, item.gold_answers)
    except GoldError as exc:
        return exc.errors
    return []


def gold_items(campaign):
    return (
        Item.objects.filter(campaign=campaign, is_gold=True)
        .select_related("prompt", "response_a", "response_b")
        .order_by("external_id")
    )
