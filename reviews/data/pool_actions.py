"""Actions on a campaign's pool of items, each atomic and recorded as one FeedbackEvent per item.

Leads and admins call these from the item browser (bulk), the rubric page (re-queue the
stale list) and the item page; tests call them directly.
"""

import uuid

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from reviews.core.exceptions import DomainError
from reviews.leads import policy
from reviews.models import Campaign, Escalation, FeedbackEvent, FinalAnswer, Item, ItemScore

CHUNK = 1000


class PoolActionError(DomainError):
    """A pool action that cannot be done as asked; nothing was written."""


def _campaign_ids(campaign: Campaign, item_ids, **flags) -> list[int]:
    """The given ids that are items of this campaign (and have the given flag values), sorted."""
    ids = sorted({int(i) for i in item_ids})
    found: list[int] = []
    for start in range(0, len(ids), CHUNK):
        found.extend(
            Item.objects.filter(campaign=campaign, id__in=ids[start : start + CHUNK], **flags).values_list(
                "id", flat=True
            )
        )
    return sorted(found)


def _require_reason(reason: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise PoolActionError("Say why: a reason is required, and it is kept with every item's history.")
    return reason


def _update(ids: list[int], **values) -> None:
    for start in range(0, len(ids), CHUNK):
        Item.objects.filter(id__in=ids[start : start + CHUNK]).update(**values)


def _events(campaign: Campaign, item_ids, *, user, action: str, feedback: dict) -> None:
    """One FeedbackEvent per item, written in bulk (COPY on PostgreSQL): a whole filter may be 100k items."""
    FeedbackEvent.record(campaign, action, feedback, actor=user, per_item=[(item_id, {}) for item_id in item_ids])


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
    from scoring.runs import request_rescore

    request_rescore(campaign, trigger=f"re-queue of {count} items")


def gold_answers_from_final(items: list[Item]) -> dict[int, list[dict]]:
    """Each item's current final answers in the gold list form [{"criterion", "response"?, "value"}]."""
    by_item: dict[int, list[dict]] = {item.id: [] for item in items}
    keys = {}
    for item in items:
        keys[item.response_a_id] = item.response_a.key
        keys[item.response_b_id] = item.response_b.key
    item_ids = [item.id for item in items]
    item_level: dict[int, list[dict]] = {}
    for start in range(0, len(item_ids), CHUNK):
        for item_id, criterion, value in FinalAnswer.objects.filter(
            item_id__in=item_ids[start : start + CHUNK]
        ).values_list("item_id", "criterion", "value"):
            item_level.setdefault(item_id, []).append({"criterion": criterion, "value": value})
    response_ids = list(keys)
    per_response: dict[int, list[tuple[str, str]]] = {}
    for start in range(0, len(response_ids), CHUNK):
        for response_id, criterion, value in FinalAnswer.objects.filter(
            response_id__in=response_ids[start : start + CHUNK]
        ).values_list("response_id", "criterion", "value"):
            per_response.setdefault(response_id, []).append((criterion, value))
    for item in items:
        answers = sorted(item_level.get(item.id, []), key=lambda a: a["criterion"])
        for response_id in (item.response_a_id, item.response_b_id):
            for criterion, value in sorted(per_response.get(response_id, [])):
                answers.append({"criterion": criterion, "response": keys[response_id], "value": value})
        by_item[item.id] = answers
    return by_item


def set_gold(campaign: Campaign, item_ids, *, user, reason: str, gold: bool = True) -> int:
    """Mark items as gold, their current final answers becoming their gold answers (items without
    final answers are refused, and then nothing is written), or unmark them; returns the count changed."""
    reason = _require_reason(reason)
    with transaction.atomic():
        ids = _campaign_ids(campaign, item_ids, is_gold=not gold)
        if not gold:
            _update(ids, is_gold=False, gold_answers=None)
            _events(
                campaign,
                ids,
                user=user,
                action=FeedbackEvent.Action.GOLD_CHANGED,
                feedback={"gold": False, "reason": reason},
            )
            return len(ids)
        items: list[Item] = []
        for start in range(0, len(ids), CHUNK):
            items += (
                Item.objects.select_for_update(of=("self",))
                .select_related("response_a", "response_b")
                .filter(id__in=ids[start : start + CHUNK])
            )
        answers = gold_answers_from_final(items)
        missing = [item.external_id for item in items if not answers[item.id]]
        if missing:
            shown = ", ".join(missing[:10]) + (f" and {len(missing) - 10} more" if len(missing) > 10 else "")
            raise PoolActionError(
                f"{len(missing)} item(s) have no final answers to use as gold answers: {shown}. Nothing was marked."
            )
        for item in items:
            item.is_gold = True
            item.gold_answers = answers[item.id]
        Item.objects.bulk_update(items, ["is_gold", "gold_answers"], batch_size=500)
        FeedbackEvent.record(
            campaign,
            FeedbackEvent.Action.GOLD_CHANGED,
            {"gold": True, "reason": reason},
            actor=user,
            per_item=[(item.id, {"answers": item.gold_answers}) for item in items],
        )
    return len(items)


def set_excluded(campaign: Campaign, item_ids, *, user, reason: str, excluded: bool = True) -> int:
    """Take items out of the pool (the queue and scoring pass them over) or return them; returns the count changed."""
    reason = _require_reason(reason)
    with transaction.atomic():
        ids = _campaign_ids(campaign, item_ids, excluded=not excluded)
        _update(ids, excluded=excluded)
        _events(
            campaign,
            ids,
            user=user,
            action=FeedbackEvent.Action.EXCLUSION_CHANGED,
            feedback={"excluded": excluded, "reason": reason},
        )
    return len(ids)


def escalate(campaign: Campaign, item_ids, *, user, reason: str) -> int:
    """Send items to the leads' queue with the given comment (reason "other", severity the item's
    current risk); items with an open escalation are left as they are. Returns the count escalated."""
    comment = _require_reason(reason)
    now = timezone.now()
    open_statuses = [Escalation.Status.OPEN, Escalation.Status.IN_REVIEW]
    with transaction.atomic():
        ids = _campaign_ids(campaign, item_ids)
        already = set()
        risk: dict[int, float] = {}
        priors: dict[int, float] = {}
        for start in range(0, len(ids), CHUNK):
            chunk = ids[start : start + CHUNK]
            already.update(
                Escalation.objects.filter(item_id__in=chunk, status__in=open_statuses).values_list("item_id", flat=True)
            )
            if campaign.scoring_run_id:
                risk.update(
                    ItemScore.objects.filter(run_id=campaign.scoring_run_id, item_id__in=chunk).values_list(
                        "item_id", "risk"
                    )
                )
            priors.update(Item.objects.filter(id__in=chunk).values_list("id", "risk_prior"))
        ids = [i for i in ids if i not in already]
        Escalation.objects.bulk_create(
            [
                Escalation(
                    uid=uuid.uuid4(),
                    campaign=campaign,
                    item_id=item_id,
                    status=Escalation.Status.OPEN,
                    reason=Escalation.Reason.OTHER,
                    # The same record of "who fired" as reviews.leads.escalation.open_escalation writes.
                    rules=[{"rule": policy.MANUAL, "value": Escalation.Reason.OTHER.value, "threshold": None}],
                    comment=comment,
                    severity=risk.get(item_id, priors.get(item_id) or 0.0),
                    opened_by=user,
                    created_at=now,
                    updated_at=now,
                )
                for item_id in ids
            ],
            batch_size=CHUNK,
        )
        _update(ids, escalated=True)
        _events(
            campaign,
            ids,
            user=user,
            action=FeedbackEvent.Action.ESCALATED,
            feedback={"reason": Escalation.Reason.OTHER.value, "comment": comment, "by": "lead"},
        )
    return len(ids)


# The browser's bulk actions: name -> (label, function, keyword arguments).
BULK_ACTIONS = {
    "requeue": ("Re-queue", requeue, {}),
    "gold": ("Mark gold", set_gold, {"gold": True}),
    "ungold": ("Unmark gold", set_gold, {"gold": False}),
    "exclude": ("Exclude from the pool", set_excluded, {"excluded": True}),
    "include": ("Return to the pool", set_excluded, {"excluded": False}),
    "escalate": ("Escalate", escalate, {}),
}


def run_bulk(campaign: Campaign, action: str, item_ids, *, user, reason: str) -> int:
    """Run one of BULK_ACTIONS on the items; returns how many items it changed."""
    if action not in BULK_ACTIONS:
        raise PoolActionError(f"Unknown action {action!r}.")
    reason = _require_reason(reason)
    _, function, kwargs = BULK_ACTIONS[action]
    return function(campaign, item_ids, user=user, reason=reason, **kwargs)
