"""Actions on a campaign's pool of items, each atomic and recorded as one FeedbackEvent per item.

Leads and admins call these from the item browser (bulk), the rubric page (re-queue the
stale list) and the item page; tests call them directly.
"""

from django.db import transaction
from django.db.models import F

from reviews.models import Campaign, FeedbackEvent, Item
from reviews.roles import role_of


def _events(campaign: Campaign, item_ids, *, user, action: str, feedback: dict) -> list[FeedbackEvent]:
    role = role_of(user) if user is not None else None
    settings_version = campaign.settings
    rubric_version = campaign.rubric_version()
    return FeedbackEvent.objects.bulk_create(
        [
            FeedbackEvent(
                campaign=campaign,
                item_id=item_id,
                actor=user,
                role=role.value if role else "",
                action=action,
                feedback=feedback,
                rubric_version=rubric_version,
                settings_version=settings_version,
                scoring_run_id=campaign.scoring_run_id,
            )
            for item_id in item_ids
        ],
        batch_size=1000,
    )


def requeue(campaign: Campaign, item_ids, *, user, reason: str, request_run: bool = True) -> int:
    """Ask for k more human judgments of these items (resolved ones included); returns the count.

    The item's current final answers stand until new judgments change them. The queue serves
    an item while its human judgments are below its target; a rescoring run is requested so
    that the items enter the active set.
    """
    k = campaign.settings.overlap_k
    with transaction.atomic():
        ids = sorted(set(Item.objects.filter(campaign=campaign, id__in=list(item_ids)).values_list("id", flat=True)))
        for start in range(0, len(ids), 1000):
            Item.objects.filter(id__in=ids[start : start + 1000]).update(judgment_target=F("human_judgments") + k)
        _events(campaign, ids, user=user, action=FeedbackEvent.Action.REQUEUED, feedback={"reason": reason, "k": k})
        if request_run and ids:
            transaction.on_commit(lambda: _request_run(campaign, len(ids)))
    return len(ids)


def _request_run(campaign: Campaign, count: int) -> None:
    from scoring.jobs import request_rescore

    request_rescore(campaign, trigger=f"re-queue of {count} items")
