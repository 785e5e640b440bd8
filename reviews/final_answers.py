"""Final answers (DESIGN.md "Final answers") and the item flags derived from them.

For each criterion: the latest lead adjudication if there is one; else the unanimous
answer of at least k human judgments; else unresolved. Per-response criteria are decided
per response (a response shown by several items has one final answer); pairwise and other
item-level criteria per item. Model labels never count.
"""

from collections import Counter, defaultdict

from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone

from reviews.models import Adjudication, Answer, FinalAnswer, Item, Judgment, LabelKind

# A key is (criterion, response_id) for per-response criteria and (criterion, None) per item.


def decide(votes: Counter, adjudicated: str | None, k: int) -> tuple[str, str] | None:
    """The final (value, basis) from human vote counts and the latest adjudicated value."""
    if adjudicated is not None:
        return adjudicated, FinalAnswer.Basis.ADJUDICATION
    if len(votes) == 1:
        value, n = next(iter(votes.items()))
        if n >= k:
            return value, FinalAnswer.Basis.UNANIMOUS
    return None


def _latest_adjudicated(rows) -> dict:
    latest: dict = {}
    for key, value, created_at, adj_id in rows:
        if key not in latest or (created_at, adj_id) > latest[key][1]:
            latest[key] = (value, (created_at, adj_id))
    return {key: value for key, (value, _) in latest.items()}


def refresh(campaign, item_ids) -> None:
    """Recompute the final answers touched by these items, and the flags of affected items.

    Items that share a response with one of them are refreshed too.
    """
    item_ids = set(item_ids)
    if not item_ids:
        return
    k = campaign.settings.overlap_k
    with transaction.atomic():
        pairs = Item.objects.filter(id__in=item_ids).values_list("response_a_id", "response_b_id")
        shown = {r for pair in pairs for r in pair}
        affected_pairs = Item.objects.filter(Q(response_a_id__in=shown) | Q(response_b_id__in=shown)).values_list(
            "id", "response_a_id", "response_b_id"
        )
        affected, response_ids = set(), set()
        for item_id, a, b in affected_pairs:
            affected.add(item_id)
            response_ids.update((a, b))
        votes: dict = defaultdict(Counter)
        human = Answer.objects.filter(judgment__kind=LabelKind.HUMAN)
        for crit, resp, value, n in (
            human.filter(response_id__in=response_ids)
            .values_list("criterion", "response_id", "value")
            .annotate(n=Count("id"))
        ):
            votes[(crit, resp)][value] = n
        for crit, item_id, value, n in (
            human.filter(response__isnull=True, judgment__item_id__in=affected)
            .values_list("criterion", "judgment__item_id", "value")
            .annotate(n=Count("id"))
        ):
            votes[(crit, ("item", item_id))][value] = n
        adjudicated = _latest_adjudicated(
            [
                ((crit, resp if resp is not None else ("item", item_id)), value, created_at, adj_id)
                for crit, resp, item_id, value, created_at, adj_id in Answer.objects.filter(
                    Q(response_id__in=response_ids) | Q(response__isnull=True, adjudication__item_id__in=affected),
                    adjudication__isnull=False,
                ).values_list(
                    "criterion",
                    "response_id",
                    "adjudication__item_id",
                    "value",
                    "adjudication__created_at",
                    "adjudication_id",
                )
            ]
        )
        now = timezone.now()
        finals = []
        for key in set(votes) | set(adjudicated):
            decided = decide(votes.get(key, Counter()), adjudicated.get(key), k)
            if decided is None:
                continue
            crit, target = key
            item_id = target[1] if isinstance(target, tuple) else None
            finals.append(
                FinalAnswer(
                    campaign=campaign,
                    criterion=crit,
                    item_id=item_id,
                    response_id=None if item_id else target,
                    value=decided[0],
                    basis=decided[1],
                    human_votes=sum(votes.get(key, Counter()).values()),
                    updated_at=now,
                )
            )
        FinalAnswer.objects.filter(Q(response_id__in=response_ids) | Q(item_id__in=affected)).delete()
        FinalAnswer.objects.bulk_create(finals)
        _refresh_item_flags(affected, votes, adjudicated, {(f.criterion, f.response_id or ("item", f.item_id)) for f in finals})


def _refresh_item_flags(item_ids, votes, adjudicated, decided_keys) -> None:
    asked = set(votes) | set(adjudicated)
    counts = dict(
        Judgment.objects.filter(item_id__in=item_ids, kind=LabelKind.HUMAN)
        .values_list("item_id")
        .annotate(n=Count("id"))
        .values_list("item_id", "n")
    )
    with_adjudication = set(
        Adjudication.objects.filter(item_id__in=item_ids).values_list("item_id", flat=True).distinct()
    )
    items = list(Item.objects.filter(id__in=item_ids).only("id", "response_a_id", "response_b_id"))
    by_target = defaultdict(set)
    for crit, target in asked:
        by_target[target].add(crit)
    for item in items:
        keys = {
            (crit, target)
            for target in (item.response_a_id, item.response_b_id, ("item", item.id))
            for crit in by_target.get(target, ())
        }
        item.resolved = bool(keys) and keys <= decided_keys
        item.adjudicated = item.id in with_adjudication
        item.human_judgments = counts.get(item.id, 0)
    Item.objects.bulk_update(items, ["resolved", "adjudicated", "human_judgments"], batch_size=500)
