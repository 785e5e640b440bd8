"""Final answers (DESIGN.md "Final answers") and the item flags derived from them.

For each criterion: the latest lead adjudication if there is one; else the unanimous
answer of at least k human judgments; else unresolved. Per-response criteria are decided
per response (a response shown by several items has one final answer); pairwise and other
item-level criteria per item. Model labels never count.
"""

from collections import Counter, defaultdict
from dataclasses import dataclass, field

from django.db import connection, transaction
from django.utils import timezone

from reviews.core import sql
from reviews.models import FinalAnswer, Item

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


def note_adjudication(latest: dict, key, value: str, at, ref: int) -> None:
    """Keep in `latest` ({key: (value, (created_at, id))}) the latest adjudicated value per key:
    the adjudication with the greatest (created_at, id) wins."""
    if key not in latest or (at, ref) > latest[key][1]:
        latest[key] = (value, (at, ref))


def wanted_answers(votes: dict, adjudicated: dict, k: int) -> dict:
    """The final answers that human votes ({key: Counter(value -> distinct human annotators)}) and
    the latest adjudicated values ({key: value}) call for: {key: (value, basis, human votes)}, the
    undecided keys left out."""
    wanted = {}
    for key in set(votes) | set(adjudicated):
        counts = votes.get(key) or Counter()
        decided = decide(counts, adjudicated.get(key), k)
        if decided is not None:
            wanted[key] = (decided[0], decided[1], sum(counts.values()))
    return wanted


def required_keys(criteria, item_id: int, response_a_id: int, response_b_id: int) -> set:
    """The target keys an item needs decided to be resolved: every criterion of the rubric, per
    response where it asks per response."""
    return {
        (c.slug, target)
        for c in criteria
        for target in ((response_a_id, response_b_id) if c.per_response else (("item", item_id),))
    }


def is_resolved(human_judgments: int, adjudicated: bool, required: set, decided_keys) -> bool:
    """Resolved: the item was judged itself (not only through items sharing its responses), and
    every required key has a final answer."""
    return (human_judgments > 0 or adjudicated) and bool(required) and required <= decided_keys


def final_rows(campaign_id: int, wanted: dict, now) -> list[tuple]:
    """FinalAnswer rows (FINAL_COLUMNS order) of {key: (value, basis, human votes)}."""
    return [(campaign_id, key[0], *_target_columns(key), *value, now) for key, value in wanted.items()]


@dataclass
class Tally:
    """What a refresh read, for callers that go on to the escalation rules without re-reading:
    human votes and the latest adjudicated value per target key, each affected item's
    (response_a_id, response_b_id, human judgments, adjudicated, resolved) after the refresh,
    and (judgments with a confidence, their mean) per refreshed item."""

    votes: dict = field(default_factory=lambda: defaultdict(Counter))
    adjudicated: dict = field(default_factory=dict)
    items: dict = field(default_factory=dict)
    confidence: dict = field(default_factory=dict)


def refresh(campaign, item_ids, *, responses=None, savepoint: bool = True) -> Tally:
    """Recompute the final answers touched by these items, and the flags of affected items.

    Items that share a response with one of them are refreshed too. `responses`: the ids of the
    items' responses when the caller holds them already (a submit), which saves a query.
    `savepoint=False` when the caller's transaction rolls back as a whole on any error. Only
    final answers and flags that changed are written.
    """
    item_ids = list(dict.fromkeys(item_ids))
    tally = Tally()
    # Bounded IN lists: SQLite accepts at most 32,766 parameters in one statement.
    for start in range(0, len(item_ids), REFRESH_CHUNK):
        with transaction.atomic(savepoint=savepoint):
            _refresh_chunk(campaign, item_ids[start : start + REFRESH_CHUNK], responses, tally)
    return tally


def _refresh_chunk(campaign, item_ids, responses, tally: Tally) -> None:
    k = campaign.settings.overlap_k
    if responses is None:
        responses = {r for pair in sql.execute_in(PAIRS_SQL, [item_ids]) for r in pair}
    # One refresh per campaign at a time: two judgments of one item committed concurrently
    # would each count only their own vote (READ COMMITTED). The campaign row is locked by
    # the same statement that finds the affected items (SQLite's IMMEDIATE transactions
    # serialize writers anyway).
    locking = AFFECTED_LOCK_SQL if connection.vendor == "postgresql" else ""
    affected = {
        row[0]: row[1:]
        for row in sql.execute_in(AFFECTED_SQL + locking, [[campaign.id], list(responses), list(responses)])
    }
    response_ids = {r for a, b, *_ in affected.values() for r in (a, b)}
    votes, existing, flags, latest = defaultdict(Counter), {}, {}, {}
    for kind, crit, resp, item_id, value, tag, n, at, ref, x in sql.execute_in(
        TALLY_SQL, [response_ids, affected, response_ids, affected, response_ids, affected, affected, item_ids]
    ):
        key = (crit, resp if resp is not None else ("item", item_id))
        if kind == "v":
            votes[key][value] = n
        elif kind == "a":
            note_adjudication(latest, key, value, at, ref)
        elif kind == "f":
            existing[key] = (ref, value, tag, n)
        elif kind == "n":
            flags[item_id] = (n, bool(ref))
        else:
            tally.confidence[item_id] = (n, x)
    adjudicated = {key: value for key, (value, _) in latest.items()}
    tally.votes.update(votes)
    tally.adjudicated.update(adjudicated)
    now = timezone.now()
    wanted = wanted_answers(votes, adjudicated, k)
    stale = [row[0] for key, row in existing.items() if wanted.get(key) != row[1:]]
    fresh = final_rows(
        campaign.id, {key: value for key, value in wanted.items() if existing.get(key, (None,))[1:] != value}, now
    )
    if stale:
        sql.execute_in(DELETE_SQL, [stale])
    sql.insert_rows(FinalAnswer, FINAL_COLUMNS, fresh)
    version = campaign.rubric_version()
    _refresh_item_flags(affected, flags, version.parsed.criteria if version else (), set(wanted), tally)


def _target_columns(key) -> tuple:
    """(item_id, response_id) of a final answer's target key."""
    target = key[1]
    return (target[1], None) if isinstance(target, tuple) else (None, target)


PAIRS_SQL = "SELECT response_a_id, response_b_id FROM reviews_item WHERE id IN ({0})"
# The items showing any of these responses, with their flags as stored; the campaign is joined
# so that PostgreSQL can lock its row in the same statement (AFFECTED_LOCK_SQL). The items are
# found by two index lookups in a subquery: with the join, SQLite would otherwise walk every
# item of the campaign (48 ms per submit at 100,000 items).
AFFECTED_SQL = (
    "SELECT i.id, i.response_a_id, i.response_b_id, i.human_judgments, i.adjudicated, i.resolved "
    "FROM reviews_item i JOIN reviews_campaign c ON c.id = i.campaign_id "
    "WHERE c.id IN ({0}) AND i.id IN (SELECT id FROM reviews_item WHERE response_a_id IN ({1}) "
    "UNION SELECT id FROM reviews_item WHERE response_b_id IN ({2}))"
)
AFFECTED_LOCK_SQL = " FOR UPDATE OF c"
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
# Everything a refresh reads, in one round trip: rows (kind, criterion, response, item, value,
# tag, n, at, ref, x) of kind 'v' (human votes, as VOTES_SQL), 'a' (adjudicated answers, as
# ADJUDICATED_SQL), 'f' (the stored final answers: tag = basis, n = human votes, ref = id), 'n'
# (an affected item's human judgments in n, 1 in ref if it was adjudicated) and 'c' (a refreshed
# item's judgments with a confidence in n, their mean in x).
TALLY_SQL = (
    # The first branch names its columns' types: PostgreSQL types a UNION's NULL columns left to right.
    "SELECT 'v', a.criterion, a.response_id, NULL, a.value, NULL, COUNT(DISTINCT j.annotator_id), "
    "CAST(NULL AS timestamp), CAST(NULL AS bigint), CAST(NULL AS double precision) "
    "FROM reviews_answer a JOIN reviews_judgment j ON j.id = a.judgment_id "
    "WHERE a.response_id IN ({0}) AND j.kind = 'human' GROUP BY a.criterion, a.response_id, a.value "
    "UNION ALL "
    "SELECT 'v', a.criterion, NULL, j.item_id, a.value, NULL, COUNT(DISTINCT j.annotator_id), NULL, NULL, NULL "
    "FROM reviews_judgment j CROSS JOIN reviews_answer a WHERE a.judgment_id = j.id AND j.item_id IN ({1}) "
    "AND j.kind = 'human' AND a.response_id IS NULL GROUP BY a.criterion, j.item_id, a.value "
    "UNION ALL "
    "SELECT 'a', a.criterion, a.response_id, d.item_id, a.value, NULL, NULL, d.created_at, d.id, NULL "
    "FROM reviews_answer a JOIN reviews_adjudication d ON d.id = a.adjudication_id WHERE a.response_id IN ({2}) "
    "UNION ALL "
    "SELECT 'a', a.criterion, a.response_id, d.item_id, a.value, NULL, NULL, d.created_at, d.id, NULL "
    "FROM reviews_adjudication d CROSS JOIN reviews_answer a WHERE a.adjudication_id = d.id "
    "AND d.item_id IN ({3}) AND a.response_id IS NULL "
    "UNION ALL "
    "SELECT 'f', f.criterion, f.response_id, f.item_id, f.value, f.basis, f.human_votes, NULL, f.id, NULL "
    "FROM reviews_finalanswer f WHERE f.response_id IN ({4}) "
    "UNION ALL "
    "SELECT 'f', f.criterion, f.response_id, f.item_id, f.value, f.basis, f.human_votes, NULL, f.id, NULL "
    "FROM reviews_finalanswer f WHERE f.item_id IN ({5}) "
    "UNION ALL "
    "SELECT 'n', NULL, NULL, i.id, NULL, NULL, "
    "(SELECT COUNT(*) FROM reviews_judgment j WHERE j.item_id = i.id AND j.kind = 'human'), NULL, "
    "CASE WHEN EXISTS (SELECT 1 FROM reviews_adjudication d WHERE d.item_id = i.id) THEN 1 ELSE 0 END, NULL "
    "FROM reviews_item i WHERE i.id IN ({6}) "
    "UNION ALL "
    "SELECT 'c', NULL, NULL, j.item_id, NULL, NULL, COUNT(j.id), NULL, NULL, AVG(j.confidence) "
    "FROM reviews_judgment j WHERE j.item_id IN ({7}) AND j.kind = 'human' AND j.confidence IS NOT NULL "
    "GROUP BY j.item_id"
)
DELETE_SQL = "DELETE FROM reviews_finalanswer WHERE id IN ({0})"
FINAL_COLUMNS = ["campaign_id", "criterion", "item_id", "response_id", "value", "basis", "human_votes", "updated_at"]


def _refresh_item_flags(affected: dict, flags: dict, criteria, decided_keys: set, tally: Tally) -> None:
    """Set resolved / adjudicated / human_judgments on the affected items ({id: (response_a_id,
    response_b_id, stored human judgments, adjudicated, resolved)}) where they changed.

    Resolved (is_resolved): the item was judged itself (not only through items sharing its
    responses), and every criterion of the campaign's rubric has a final answer, per response
    where it asks per response. Until then the item stays in the queue for the criteria still open.
    """
    rows = []
    for item_id, (a, b, *stored) in affected.items():
        n_human, has_adjudication = flags[item_id]
        resolved = is_resolved(n_human, has_adjudication, required_keys(criteria, item_id, a, b), decided_keys)
        tally.items[item_id] = (a, b, n_human, has_adjudication, resolved)
        if tuple(stored) != (n_human, has_adjudication, resolved):
            rows.append((resolved, has_adjudication, n_human, item_id))
    sql.update_rows(Item, ["resolved", "adjudicated", "human_judgments"], rows)
