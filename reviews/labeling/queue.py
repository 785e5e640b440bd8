"""The labelers' queue: claim the next item as a lease, and submit, skip or escalate it.

Every function here is a whole transaction; views only parse input and call them.
"""

import random
import uuid
from dataclasses import dataclass
from datetime import timedelta

from django.db import connection, transaction
from django.utils import timezone

from reviews.access import may_work_in, user_role
from reviews.core import sql
from reviews.core.exceptions import DomainError
from reviews.core.rows import Joined, insert_row
from reviews.labeling.progress import budget_spent
from reviews.leads import escalation, final_answers
from reviews.models import (
    Annotator,
    Answer,
    Assignment,
    Campaign,
    CampaignSettings,
    Escalation,
    FeedbackEvent,
    Item,
    Judgment,
    LabelKind,
    Prompt,
    Response,
    RubricVersion,
    Source,
)
from reviews.models.campaigns import immutable
from scoring.runs import maybe_rescore_after_judgments

Status = Assignment.Status
# A labeler who finished a lease this way never gets the item again.
DONE = (Status.SUBMITTED, Status.SKIPPED, Status.ESCALATED)


class LeaseError(DomainError):
    """The lease is not this labeler's live lease (stale, foreign, forged or already used)."""


class AlreadyDone(LeaseError):
    """The lease was already submitted, skipped or escalated: a retried or doubled request."""


@dataclass
class Claim:
    """The result of asking for the next item: a lease, or why there is none."""

    assignment: Assignment | None
    # "item", "budget_spent", "daily_budget_spent", "empty", "no_rubric", "not_member"
    state: str
    # progress.budget_spent's figures when the claim read them (the progress strip reuses them).
    spent: tuple[int, int] | None = None

    @property
    def message(self) -> str:
        return {
            "item": "",
            "budget_spent": "The campaign's label budget is spent. Thank you: there is nothing left to judge.",
            "daily_budget_spent": "Today's label budget is spent. Come back tomorrow.",
            "empty": "The queue is empty: every item you may judge is judged, leased to someone, or escalated.",
            "no_rubric": "This campaign has no published rubric yet; an admin must publish one.",
            "not_member": "You are not a member of this campaign; ask a lead or an admin to add you.",
        }[self.state]


def annotator_id(user) -> int:
    """The id of the user's annotator row: loaded with the user (reviews.people.backends), else
    looked up (created on first use) once per user object."""
    found = getattr(user, "reviews_annotator_id", None)
    if found is None:
        found = user.reviews_annotator_id = Annotator.for_user(user).id
    return found


def budget_state(campaign: Campaign, spent: tuple[int, int] | None = None) -> str | None:
    """'budget_spent' / 'daily_budget_spent' when the campaign's budget forbids more judgments
    (`spent`: progress.budget_spent's figures, read here when not given)."""
    s = campaign.settings
    if s.budget_total is None and s.budget_daily is None:
        return None
    total, today = spent if spent is not None else budget_spent(campaign)
    if s.budget_total is not None and total >= s.budget_total:
        return "budget_spent"
    if s.budget_daily is not None and today >= s.budget_daily:
        return "daily_budget_spent"
    return None


# The items this labeler may be given, in serving order: in the pool, unresolved (or re-queued:
# judgment_target set), not escalated, not judged, skipped or escalated by them, with fewer human
# judgments plus live leases than wanted (k, or a re-queue's target). Plain SQL: it runs on every
# claim, and the same query through the ORM cost 2 ms of CPU to build and compile.
CANDIDATES_SQL = (
    "SELECT i.id{columns} FROM reviews_item i{join} "
    "WHERE i.campaign_id = %s AND NOT i.escalated AND NOT i.excluded AND {gold} "
    "AND (NOT i.resolved OR i.judgment_target IS NOT NULL) "
    "AND NOT EXISTS (SELECT 1 FROM reviews_judgment j WHERE j.annotator_id = %s AND j.item_id = i.id) "
    "AND i.id NOT IN (SELECT a.item_id FROM reviews_assignment a WHERE a.user_id = %s AND a.status IN (%s, %s, %s)) "
    "AND i.human_judgments < COALESCE(i.judgment_target, %s) - COALESCE((SELECT COUNT(*) FROM reviews_assignment a "
    "WHERE a.item_id = i.id AND a.status = %s AND a.expires_at > %s), 0) "
    "ORDER BY {order} LIMIT %s"
)
SCORED = {  # the scoring run's active set, in its serving order
    "columns": ", s.audit, s.selection_probability",
    "join": " JOIN reviews_itemscore s ON s.item_id = i.id AND s.run_id = %s AND s.selected",
    "order": "s.rank",
}
IN_ORDER = {"columns": "", "join": "", "order": "i.id"}  # gold items, and every item before any run


def _candidates(campaign: Campaign, user, annotator: int, now, k: int, *, gold: bool, run_id: int | None) -> list:
    """Rows (item id, [audit, selection probability]) of the first CANDIDATES_PER_TRY candidates."""
    shape = SCORED if run_id is not None else IN_ORDER
    sql = CANDIDATES_SQL.format(gold="i.is_gold" if gold else "NOT i.is_gold", **shape)
    params = [run_id] if run_id is not None else []
    params += [campaign.id, annotator, user.id, *DONE, k, Status.LIVE, _db_time(now), CANDIDATES_PER_TRY]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _db_time(value):
    """A datetime as the database compares it (what the ORM would send)."""
    return connection.ops.adapt_datetimefield_value(value)


ROOM_SQL = (
    "SELECT (SELECT COUNT(*) FROM reviews_assignment a WHERE a.item_id = %s AND a.status = %s AND a.expires_at > %s), "
    "(SELECT COUNT(*) FROM reviews_judgment j WHERE j.item_id = %s AND j.kind = %s)"
)


def _has_room(item: Item, k: int, now) -> bool:
    """Fewer human judgments plus live leases than wanted (k, or a re-queue's target), read afresh
    (under the item's lock) in one query."""
    with connection.cursor() as cursor:
        cursor.execute(ROOM_SQL, [item.id, Status.LIVE, _db_time(now), item.id, LabelKind.HUMAN])
        leases, judged = cursor.fetchone()
    return leases + judged < (item.judgment_target or k)


def claim_next(campaign: Campaign, user, *, rng: random.Random | None = None) -> Claim:
    """Lease the best item this labeler may judge (or renew their open lease), atomically."""
    rng = rng or random.Random()
    if not may_work_in(user, campaign):
        return Claim(None, "not_member")
    rubric_version = campaign.rubric_version()
    if rubric_version is None:
        return Claim(None, "no_rubric")
    try:
        return _claim(campaign, user, rubric_version, rng, careful=False)
    except _Retry:
        return _claim(campaign, user, rubric_version, rng, careful=True)


def _claim(campaign: Campaign, user, rubric_version, rng, *, careful: bool) -> Claim:
    now = timezone.now()
    annotator = annotator_id(user)
    with transaction.atomic():
        current = _open_lease(campaign, user, now)
        if current is not None:
            return Claim(renew(current), "item")
        s = campaign.settings
        spent = budget_spent(campaign) if s.budget_total is not None or s.budget_daily is not None else None
        if blocked := budget_state(campaign, spent):
            return Claim(None, blocked, spent)
        item, reason, probability, run_id = _pick(campaign, user, annotator, now, s, rng, careful)
        if item is None:
            return Claim(None, "empty", spent)
        item.campaign = campaign
        left = rng.choice([item.response_a, item.response_b])
        assignment = insert_row(
            Assignment,
            uid=uuid.uuid4(),
            item_id=item.id,
            user_id=user.id,
            left_response_id=left.id,
            reason=reason,
            selection_probability=probability,
            rubric_version_id=rubric_version.id,
            settings_version_id=s.id,
            scoring_run_id=run_id,
            expires_at=now + timedelta(minutes=s.lease_minutes),
        )
        assignment.item, assignment.left_response = item, left
        assignment.rubric_version, assignment.settings_version = rubric_version, s
    return Claim(assignment, "item", spent)


LIVE_LEASES = Joined(
    (("a", Assignment),),
    "FROM reviews_assignment a JOIN reviews_item i ON i.id = a.item_id WHERE a.user_id = %s AND a.status = %s "
    "ORDER BY a.created_at",
    extra=("i.campaign_id",),
)


def _open_lease(campaign: Campaign, user, now) -> Assignment | None:
    """The labeler's live lease in this campaign, locked; leases of theirs that ran out are
    closed on the way (the one-live-lease-per-item rule must not trip on them). One query when
    there is none: a labeler holds a live lease in few campaigns at once."""
    live = LIVE_LEASES.fetch([user.id, Status.LIVE], suffix=_lock_suffix("a"))
    ran_out = [lease.id for lease, _ in live if lease.expires_at <= now]
    if ran_out:
        Assignment.objects.filter(id__in=ran_out).update(status=Status.EXPIRED, ended_at=now)
    for lease, campaign_id in live:
        if lease.expires_at > now and campaign_id == campaign.id:
            current = _leases("a.id = %s", [lease.id])[0]
            current.item.campaign = campaign
            return current
    return None


def _lock_suffix(alias: str) -> str:
    """The clause that locks the rows of `alias` (none on SQLite, whose writers are serialized)."""
    return f" FOR UPDATE OF {alias}" if connection.features.has_select_for_update_of else ""


def _pick(campaign, user, annotator, now, settings_version, rng, careful):
    """(item, reason, selection probability, scoring run id); item None when nothing is left."""
    k = settings_version.overlap_k
    if settings_version.gold_rate > 0 and rng.random() < settings_version.gold_rate:
        rows = _candidates(campaign, user, annotator, now, k, gold=True, run_id=None)
        gold = _lock_first(rows, k, now, careful)
        if gold is not None:
            return gold[0], Assignment.Reason.GOLD, None, None
    run_id = campaign.scoring_run_id
    rows = _candidates(campaign, user, annotator, now, k, gold=False, run_id=run_id)
    if run_id is None:  # no scoring run yet: import order
        first = _lock_first(rows, k, now, careful)
        return (first[0] if first else None), Assignment.Reason.ORDER, None, None
    # The candidates bring their score's audit flag and selection probability along.
    first = _lock_first(rows, k, now, careful)
    if first is None:
        return None, None, None, None
    item, audit, probability = first
    return item, Assignment.Reason.AUDIT if audit else Assignment.Reason.UTILITY, probability, run_id


CANDIDATES_PER_TRY = 20


def _lock_first(rows: list, k: int, now, careful: bool) -> tuple | None:
    """(item, *the candidate's other values) for the first candidate (rows of id first) that still
    has room, locked so that no other claimer takes it meanwhile.

    On PostgreSQL a first pass locks candidate rows with SKIP LOCKED (a row another claimer
    holds is passed over, not waited for); when every candidate is held, a second pass waits for
    the locks, so the last places of an item still fill up to k. Room is re-read under the lock.
    The lock of a candidate found full must be released (two claimers waiting in the second pass
    must never hold each other's rows): `careful` takes a savepoint per candidate for that;
    otherwise the first pass takes none, as a candidate almost always has room, and a full one
    raises _Retry, which rolls the whole claim back for claim_next to redo it carefully.
    SQLite has no row locks, but its IMMEDIATE transactions already serialize claimers: there a
    candidate is read and its room checked without a savepoint.
    """
    if not connection.features.has_select_for_update_skip_locked:
        for row in rows:
            item = _page_item(row[0], None)
            if item is not None and _has_room(item, k, now):
                return (item, *row[1:])
        return None
    if not careful:
        for row in rows:
            item = _page_item(row[0], skip_locked=True)
            if item is None:
                continue  # another claimer holds it: nothing of ours to release
            if _has_room(item, k, now):
                return (item, *row[1:])
            raise _Retry
    for skip_locked in (True, False):
        for row in rows:
            try:
                # A savepoint per candidate: rolling it back releases the lock of a full item,
                # so two waiting claimers never hold each other's rows (no deadlock).
                with transaction.atomic():
                    item = _page_item(row[0], skip_locked)
                    if item is not None and _has_room(item, k, now):
                        return (item, *row[1:])
                    raise _Full
            except _Full:
                continue
    return None


PAGE_ITEM = Joined(
    (("i", Item), ("p", Prompt), ("ra", Response), ("rb", Response)),
    "FROM reviews_item i JOIN reviews_prompt p ON p.id = i.prompt_id "
    "JOIN reviews_response ra ON ra.id = i.response_a_id JOIN reviews_response rb ON rb.id = i.response_b_id "
    "WHERE i.id = %s",
)


def _page_item(item_id: int, skip_locked: bool | None) -> Item | None:
    """The item with what the compare page shows (prompt, both responses), locked unless
    `skip_locked` is None (then the row another claimer holds is skipped, or waited for)."""
    suffix = "" if skip_locked is None else " FOR UPDATE OF i" + (" SKIP LOCKED" if skip_locked else "")
    found = PAGE_ITEM.fetch([item_id], suffix=suffix)
    if not found:
        return None
    item, prompt, response_a, response_b = found[0]
    item.prompt, item.response_a, item.response_b = prompt, response_a, response_b
    return item


class _Full(Exception):
    """A candidate turned out full (or locked): roll its savepoint back."""


class _Retry(Exception):
    """A candidate locked without a savepoint turned out full: roll the claim back, redo it carefully."""


def _with_versions(lease: Assignment) -> Assignment:
    """Attach the lease's rubric and settings versions from the process's cache of immutable rows."""
    lease.rubric_version = immutable(RubricVersion, lease.rubric_version_id)
    lease.settings_version = immutable(CampaignSettings, lease.settings_version_id)
    return lease


def renew(assignment: Assignment) -> Assignment:
    """Extend a live lease while its page is open."""
    minutes = assignment.settings_version.lease_minutes
    assignment.expires_at = timezone.now() + timedelta(minutes=minutes)
    assignment.save(update_fields=["expires_at"])
    return assignment


# A lease with its item, campaign, prompt and responses, and what a lease action reads besides:
# the campaign's settings and rubric versions in force, the item's risk in the scoring run in
# force, and the campaign's last run (status, judgment mark) for the rescoring trigger.
LEASE_SQL = (
    "FROM reviews_assignment a JOIN reviews_item i ON i.id = a.item_id JOIN reviews_campaign c ON c.id = i.campaign_id "
    "JOIN reviews_prompt p ON p.id = i.prompt_id JOIN reviews_response ra ON ra.id = i.response_a_id "
    "JOIN reviews_response rb ON rb.id = i.response_b_id JOIN reviews_response rl ON rl.id = a.left_response_id "
    "WHERE {where}"
)
LEASE_EXTRA = (
    "(SELECT v.id FROM reviews_campaignsettings v WHERE v.campaign_id = c.id ORDER BY v.number DESC LIMIT 1)",
    "(SELECT v.id FROM reviews_rubricversion v WHERE v.rubric_id = c.rubric_id AND v.published_at IS NOT NULL "
    "ORDER BY v.number DESC LIMIT 1)",
    "(SELECT s.risk FROM reviews_itemscore s WHERE s.run_id = c.scoring_run_id AND s.item_id = i.id)",
    "(SELECT r.status FROM reviews_scoringrun r WHERE r.campaign_id = c.id ORDER BY r.id DESC LIMIT 1)",
    "(SELECT r.judgment_mark FROM reviews_scoringrun r WHERE r.campaign_id = c.id ORDER BY r.id DESC LIMIT 1)",
)
LEASE_TABLES = (
    ("a", Assignment),
    ("i", Item),
    ("c", Campaign),
    ("p", Prompt),
    ("ra", Response),
    ("rb", Response),
    ("rl", Response),
)
_LEASE_QUERIES: dict = {}


def _leases(where: str, params: list, *, suffix: str = "") -> list[Assignment]:
    """Leases (LEASE_SQL) with their relations attached and the extra values as attributes."""
    query = _LEASE_QUERIES.get(where)
    if query is None:
        query = _LEASE_QUERIES[where] = Joined(LEASE_TABLES, LEASE_SQL.format(where=where), LEASE_EXTRA)
    out = []
    for lease, item, campaign, prompt, response_a, response_b, left, *extra in query.fetch(params, suffix=suffix):
        item.campaign, item.prompt, item.response_a, item.response_b = campaign, prompt, response_a, response_b
        lease.item, lease.left_response = item, left
        settings_id, rubric_version_id, lease.item_risk, lease.last_run_status, lease.last_run_mark = extra
        # The versions in force: Campaign.settings and rubric_version() read them from the cache.
        campaign.current_settings_id, campaign.current_rubric_version_id = settings_id, rubric_version_id
        out.append(_with_versions(lease))
    return out


def lease_for(user, uid, *, lock: bool = False) -> Assignment:
    """The labeler's own lease by its public id; anything else is a LeaseError with a reason.

    It brings what a lease action needs besides (LEASE_SQL), so that a submit reads nothing else
    before it writes; `lock` locks the lease row (inside the caller's transaction).
    """
    try:
        key = Assignment._meta.get_field("uid").get_db_prep_value(uuid.UUID(str(uid)), connection)
    except ValueError:
        raise LeaseError("That item is not assigned to you.") from None
    # Lock the lease row only: locking the joined item and campaign too would deadlock two
    # submits whose final-answer refresh touches each other's items (PostgreSQL).
    found = _leases("a.uid = %s", [key], suffix=_lock_suffix("a") if lock else "")
    if not found or found[0].user_id != user.id:
        raise LeaseError("That item is not assigned to you.")
    return found[0]


def live_lease(user, uid, lease: Assignment | None = None) -> Assignment:
    """The labeler's live lease for an action, locked: `lease` if the caller locked it already in
    this transaction (lease_for(..., lock=True)), else looked up by uid. A finished, expired or
    foreign lease is refused."""
    assignment = lease if lease is not None else lease_for(user, uid, lock=True)
    if assignment.status != Status.LIVE:
        raise AlreadyDone(f"This item was already {assignment.get_status_display().lower()}.")
    if assignment.expires_at <= timezone.now():
        raise LeaseError("Your lease on this item expired, so it went back to the queue. Nothing was saved.")
    return assignment


def _event(assignment: Assignment, user, action: str, feedback: dict) -> FeedbackEvent:
    role = user_role(user)
    return FeedbackEvent.record(
        assignment.item.campaign,
        action,
        {
            "assignment": str(assignment.uid),
            "shown_left": assignment.left_response.key,
            "reason": assignment.reason,
            **feedback,
        },
        actor=user,
        role=role.value if role else "",
        item=assignment.item,
        annotator=annotator_id(user),
        # The lease's context: what the labeler saw when the item was served.
        rubric_version=assignment.rubric_version_id,
        settings_version=assignment.settings_version_id,
        scoring_run=assignment.scoring_run_id,
    )


FINISH_SQL = "UPDATE reviews_assignment SET status = %s, ended_at = %s WHERE id = %s"


def _finish(assignment: Assignment, status: str) -> None:
    assignment.status = status
    assignment.ended_at = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(FINISH_SQL, [status, _db_time(assignment.ended_at), assignment.id])


def submit(
    user,
    uid,
    answers: list[tuple[str, int | None, str]],
    *,
    confidence: int | None,
    rationale: str,
    time_spent_ms: int | None,
    lease: Assignment | None = None,
) -> Judgment:
    """Record a judgment for the labeler's live lease: answers are (criterion, response id or None, value).

    `lease`: the lease, when the caller locked it in its transaction already (live_lease). The
    final answers of the item (and of items sharing its responses) are refreshed, and the
    escalation rules checked for it from what that refresh read. A second submit of the same
    lease raises AlreadyDone and writes nothing.
    """
    # Within the caller's transaction (`lease`), no savepoint: any error rolls it all back.
    with transaction.atomic(savepoint=lease is None):
        assignment = live_lease(user, uid, lease)
        item = assignment.item
        campaign = item.campaign
        judgment = insert_row(
            Judgment,
            item_id=item.id,
            annotator_id=annotator_id(user),
            kind=LabelKind.HUMAN,
            source=Source.APP,
            assignment_id=assignment.id,
            confidence=None if confidence is None else (confidence - 1) / 4,
            rationale=rationale,
            time_spent_ms=time_spent_ms,
            left_response_id=assignment.left_response_id,
            rubric_version_id=assignment.rubric_version_id,
            settings_version_id=campaign.settings.id,
            scoring_run_id=assignment.scoring_run_id,
        )
        judgment.item, judgment.assignment, judgment.left_response = item, assignment, assignment.left_response
        judgment.rubric_version, judgment.settings_version = assignment.rubric_version, campaign.settings
        sql.insert_rows(
            Answer,
            ["judgment_id", "criterion", "response_id", "value"],
            [(judgment.id, criterion, response_id, value) for criterion, response_id, value in answers],
        )
        _finish(assignment, Status.SUBMITTED)
        tally = final_answers.refresh(
            campaign, [item.id], responses=[item.response_a_id, item.response_b_id], savepoint=False
        )
        # r in the scoring run in force (lease_for's annotation), else the prior (rule 2 for an unscored item).
        risk = assignment.item_risk if assignment.item_risk is not None else item.risk_prior
        rules = escalation.fired_rules(campaign, item, tally, risk)
        if rules:
            fired = {item.id: (rules, risk or 0.0)}
            escalation.run_rules(campaign, [item.id], trigger=f"judgment {judgment.id}", fired=fired)
        _event(
            assignment,
            user,
            FeedbackEvent.Action.JUDGED,
            {
                "judgment": judgment.id,
                "answers": [[c, r, v] for c, r, v in answers],
                "confidence": confidence,
                "rationale": rationale,
                "time_spent_ms": time_spent_ms,
            },
        )
    # After the commit: the rescoring trigger must never cost the labeler their judgment.
    last_run = (assignment.last_run_status, assignment.last_run_mark)
    maybe_rescore_after_judgments(campaign, judgment_id=judgment.id, last_run=last_run)
    return judgment


def skip(user, uid, *, time_spent_ms: int | None = None, lease: Assignment | None = None) -> None:
    """The labeler passes on the item; it goes back to the queue for others, never to them."""
    with transaction.atomic(savepoint=lease is None):
        assignment = live_lease(user, uid, lease)
        _finish(assignment, Status.SKIPPED)
        _event(assignment, user, FeedbackEvent.Action.SKIPPED, {"time_spent_ms": time_spent_ms})


def escalate(
    user, uid, *, reason: str, comment: str, time_spent_ms: int | None = None, lease: Assignment | None = None
) -> Escalation:
    """The labeler sends the item to the leads; it leaves the labelers' queue until resolved."""
    if reason not in {
        Escalation.Reason.AMBIGUOUS,
        Escalation.Reason.HARMFUL,
        Escalation.Reason.BROKEN,
        Escalation.Reason.OTHER,
    }:
        raise DomainError("Choose a reason for the escalation.")
    with transaction.atomic(savepoint=lease is None):
        assignment = live_lease(user, uid, lease)
        opened, _ = escalation.open_escalation(
            assignment.item, reason=reason, comment=comment, user=user, record_event=False
        )
        _finish(assignment, Status.ESCALATED)
        _event(
            assignment,
            user,
            FeedbackEvent.Action.ESCALATED,
            {"escalation": str(opened.uid), "reason": reason, "comment": comment, "time_spent_ms": time_spent_ms},
        )
    return opened
