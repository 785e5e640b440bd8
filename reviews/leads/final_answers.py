"""Final answers (DESIGN.md "Final answers") and the item flags derived from them.

For each criterion: the latest lead adjudication if there is one; else the unanimous
answer of at least k human judgments; else unresolved. Per-response criteria are decided
per response (a response shown by several items has one final answer); pairwise and other
item-level criteria per item. Model labels never count.
"""

from collections import Counter, defaultdict

from django.db import transaction
from django.utils import timezone

from reviews.core import sql
from reviews.models import Campaign, FinalAnswer, Item

REFRESH_CHUNK = 1000

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
    item_ids = list(dict.fromkeys(item_ids))
    # Bounded IN lists: SQLite accepts at most 32,766 parameters in one statement.
    for start in range(0, len(item_ids), REFRESH_CHUNK):
        _refresh_chunk(campaign, item_ids[start : start + REFRESH_CHUNK])


def _refresh_chunk(campaign, item_ids) -> None:
    k = campaign.settings.overlap_k
    with transaction.atomic():
        # One refresh per campaign at a time: two judgments of one item committed concurrently
        # would each count only their own vote (READ COMMITTED) and neither decide.
        Campaign.objects.select_for_update().filter(pk=campaign.pk).first()
        shown = {r for pair in sql.execute_in(PAIRS_SQL, [item_ids]) for r in pair}
        affected_pairs = sql.execute_in(AFFECTED_SQL, [shown, shown])
        affected, response_ids = set(), set()
        for item_id, a, b in affected_pairs:
            affected.add(item_id)
            response_ids.update((a, b))
        votes: dict = defaultdict(Counter)
        for crit, resp, item_id, value, n in sql.execute_in(VOTES_SQL, [response_ids, affected]):
            votes[(crit, resp if resp is not None else ("item", item_id))][value] = n
        adjudicated = _latest_adjudicated(
            ((crit, resp if resp is not None else ("item", item_id)), value, created_at, adj_id)
            for crit, resp, item_id, value, created_at, adj_id in sql.execute_in(
                ADJUDICATED_SQL, [response_ids, affected]
            )
        )
        now = timezone.now()
        finals, decided_keys = [], set()
        for key in set(votes) | set(adjudicated):
            decided = decide(votes.get(key, Counter()), adjudicated.get(key), k)
            if decided is None:
                continue
            decided_keys.add(key)
            crit, target = key
            item_id = target[1] if isinstance(target, tuple) else None
            finals.append(
                (
                    campaign.id,
                    crit,
                    item_id,
                    None if item_id else target,
                    decided[0],
                    decided[1],
                    sum(votes.get(key, Counter()).values()),
                    now,
                )
            )
        sql.execute_in(DELETE_BY_RESPONSE_SQL, [response_ids])
        sql.execute_in(DELETE_BY_ITEM_SQL, [affected])
        sql.insert_rows(FinalAnswer, FINAL_COLUMNS, finals)
        version = campaign.rubric_version()
        _refresh_item_flags(affected_pairs, version.parsed.criteria if version else (), decided_keys)


PAIRS_SQL = "SELECT response_a_id, response_b_id FROM reviews_item WHERE id IN ({0})"
AFFECTED_SQL = (
    "SELECT id, response_a_id, response_b_id FROM reviews_item WHERE response_a_id IN ({0}) OR response_b_id IN ({1})"
)
# Human votes per (criterion, response) for per-response criteria, per (criterion, item) otherwise;
# a person who judged two items showing the same response still votes once on it.
# Two index-friendly halves joined by UNION ALL: an OR across them would scan the table.
# CROSS JOIN makes SQLite start from the item's judgments (not from every answer whose
# response_id IS NULL); other databases treat it as a plain join.
VOTES_SQL = (
    "SELECT a.criterion, a.response_id, NULL, a.value, COUNT(DISTINCT j.annotator_id) FROM reviews_answer a "
    "JOIN reviews_judgment j ON j.id = a.judgment_id WHERE a.response_id IN ({0}) AND j.kind = 'human' "
    "GROUP BY a.criterion, a.response_id, a.value "
    "UNION ALL "
    "SELECT a.criterion, NULL, j.item_id, a.value, COUNT(DISTINCT j.annotator_id) FROM reviews_judgment j "
    "CROSS JOIN reviews_answer a WHERE a.judgment_id = j.id AND j.item_id IN ({1}) AND j.kind = 'human' "
    "AND a.response_id IS NULL GROUP BY a.criterion, j.item_id, a.value"
)
ADJUDICATED_SQL = (
    "SELECT a.criterion, a.response_id, d.item_id, a.value, d.created_at, d.id FROM reviews_answer a "
    "JOIN reviews_adjudication d ON d.id = a.adjudication_id WHERE a.response_id IN ({0}) "
    "UNION ALL "
    "SELECT a.criterion, a.response_id, d.item_id, a.value, d.created_at, d.id FROM reviews_adjudication d "
    "CROSS JOIN reviews_answer a WHERE a.adjudication_id = d.id AND d.item_id IN ({1}) AND a.response_id IS NULL"
)
FLAGS_SQL = (
    "SELECT i.id, (SELECT COUNT(*) FROM reviews_judgment j WHERE j.item_id = i.id AND j.kind = 'human'), "
    "EXISTS (SELECT 1 FROM reviews_adjudication d WHERE d.item_id = i.id) FROM reviews_item i WHERE i.id IN ({0})"
)
DELETE_BY_RESPONSE_SQL = "DELETE FROM reviews_finalanswer WHERE response_id IN ({0})"
DELETE_BY_ITEM_SQL = "DELETE FROM reviews_finalanswer WHERE item_id IN ({0})"
FINAL_COLUMNS = ["campaign_id", "criterion", "item_id", "response_id", "value", "basis", "human_votes", "updated_at"]


def _refresh_item_flags(item_pairs, criteria, decided_keys) -> None:
    """Set resolved / adjudicated / human_judgments on items given as (id, response_a_id, response_b_id).

    Resolved: the item was judged itself (not only through items sharing its responses), and
    every criterion of the campaign's rubric has a final answer, per response where it asks
    per response. Until then the item stays in the queue for the criteria still open.
    """
    flags = {
        item_id: (n_human, bool(has_adjudication))
        for item_id, n_human, has_adjudication in sql.execute_in(FLAGS_SQL, [[item_id for item_id, _, _ in item_pairs]])
    }
    rows = []
    for item_id, a, b in item_pairs:
        required = {
            (c.slug, target) for c in criteria for target in ((a, b) if c.per_response else (("item", item_id),))
        }
        n_human, has_adjudication = flags[item_id]
        resolved = (n_human > 0 or has_adjudication) and bool(required) and required <= decided_keys
        rows.append((resolved, has_adjudication, n_human, item_id))
    sql.update_rows(Item, ["resolved", "adjudicated", "human_judgments"], rows)
