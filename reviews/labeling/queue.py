"""The labelers' queue: claim the next item as a lease, and submit, skip or escalate it.

Every function here is a whole transaction; views only parse input and call them.
"""

import random
import uuid
from dataclasses import dataclass
from datetime import timedelta

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import connection, transaction
from django.db.models import Count, F, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from reviews.access import may_work_in, user_role
from reviews.core.exceptions import DomainError
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
    ItemScore,
    Judgment,
    LabelKind,
    RubricVersion,
    ScoringRun,
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


def _eligible(campaign: Campaign, user, annotator: int, now, k: int):
    """Items this labeler may be given: in the pool, unresolved, not escalated, not seen by them,
    with fewer than k judgments plus live leases."""
    live_leases = (
        Assignment.objects.filter(item=OuterRef("pk"), status=Status.LIVE, expires_at__gt=now)
        .values("item")
        .annotate(n=Count("id"))
        .values("n")
    )
    return (
        Item.objects.filter(campaign=campaign, excluded=False, escalated=False)
        # A re-queued item (judgment_target set) is served again although it is resolved.
        .filter(Q(resolved=False) | Q(judgment_target__isnull=False))
        .exclude(judgments__annotator_id=annotator)
        .exclude(id__in=Assignment.objects.filter(user=user, status__in=DONE).values("item_id"))
        .annotate(leases=Coalesce(Subquery(live_leases), 0))
        .filter(human_judgments__lt=Coalesce(F("judgment_target"), k) - F("leases"))
    )


def _has_room(item: Item, k: int, now) -> bool:
    """Fewer human judgments plus live leases than wanted (k, or a re-queue's target), read afresh
    (under the item's lock) in one query."""
    held = Item.objects.filter(id=item.id).values_list(
        Subquery(
            Assignment.objects.filter(item_id=item.id, status=Status.LIVE, expires_at__gt=now)
            .values("item_id")
            .annotate(n=Count("id"))
            .values("n")
        ),
        Subquery(
            Judgment.objects.filter(item_id=item.id, kind=LabelKind.HUMAN)
            .values("item_id")
            .annotate(n=Count("id"))
            .values("n")
        ),
    )
    leases, judged = held.get()
    return (leases or 0) + (judged or 0) < (item.judgment_target or k)


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
        assignment = Assignment.objects.create(
            uid=uuid.uuid4(),
            item=item,
            user=user,
            left_response=rng.choice([item.response_a, item.response_b]),
            reason=reason,
            selection_probability=probability,
            rubric_version=rubric_version,
            settings_version=s,
            scoring_run_id=run_id,
            expires_at=now + timedelta(minutes=s.lease_minutes),
        )
    return Claim(assignment, "item", spent)


def _open_lease(campaign: Campaign, user, now) -> Assignment | None:
    """The labeler's live lease in this campaign, locked; leases of theirs that ran out are
    closed on the way (the one-live-lease-per-item rule must not trip on them). One query: a
    labeler holds a live lease in few campaigns at once."""
    live = list(
        Assignment.objects.select_for_update(of=("self",))
        .select_related(*LEASE_PAGE_RELATED)
        .filter(user=user, status=Status.LIVE)
        .order_by("created_at")
    )
    ran_out = [a.id for a in live if a.expires_at <= now]
    if ran_out:
        Assignment.objects.filter(id__in=ran_out).update(status=Status.EXPIRED, ended_at=now)
    for lease in live:
        if lease.expires_at > now and lease.item.campaign_id == campaign.id:
            lease.item.campaign = campaign
            return _with_versions(lease)
    return None


def _pick(campaign, user, annotator, now, settings_version, rng, careful):
    """(item, reason, selection probability, scoring run id); item None when nothing is left."""
    k = settings_version.overlap_k
    candidates = _eligible(campaign, user, annotator, now, k)
    if settings_version.gold_rate > 0 and rng.random() < settings_version.gold_rate:
        gold = _lock_first(candidates.filter(is_gold=True).order_by("id").values_list("id"), k, now, careful)
        if gold is not None:
            return gold[0], Assignment.Reason.GOLD, None, None
    candidates = candidates.filter(is_gold=False)
    run_id = campaign.scoring_run_id
    if run_id is None:  # no scoring run yet: import order
        first = _lock_first(candidates.order_by("id").values_list("id"), k, now, careful)
        return (first[0] if first else None), Assignment.Reason.ORDER, None, None
    # The candidates bring their score's audit flag and selection probability along.
    ranked = (
        candidates.filter(scores__run_id=run_id, scores__selected=True)
        .order_by("scores__rank")
        .values_list("id", "scores__audit", "scores__selection_probability")
    )
    first = _lock_first(ranked, k, now, careful)
    if first is None:
        return None, None, None, None
    item, audit, probability = first
    return item, Assignment.Reason.AUDIT if audit else Assignment.Reason.UTILITY, probability, run_id


CANDIDATES_PER_TRY = 20


def _lock_first(candidates, k: int, now, careful: bool) -> tuple | None:
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
    rows = list(candidates[:CANDIDATES_PER_TRY])
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


def _page_item(item_id: int, skip_locked: bool | None) -> Item | None:
    """The item with what the compare page shows (prompt, both responses), locked unless
    `skip_locked` is None."""
    rows = Item.objects.select_related("prompt", "response_a", "response_b").filter(id=item_id)
    if skip_locked is not None:
        rows = rows.select_for_update(skip_locked=skip_locked, of=("self",))
    return rows.first()


class _Full(Exception):
    """A candidate turned out full (or locked): roll its savepoint back."""


class _Retry(Exception):
    """A candidate locked without a savepoint turned out full: roll the claim back, redo it carefully."""


# What the compare page and the lease actions read of a lease, in the query that fetches it (its
# rubric and settings versions are immutable: they come from the process's cache, _with_versions).
LEASE_PAGE_RELATED = (
    "item__prompt",
    "item__response_a",
    "item__response_b",
    "left_response",
)


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


def lease_for(user, uid, *, lock: bool = False) -> Assignment:
    """The labeler's own lease by its public id; anything else is a LeaseError with a reason.

    Locked (`lock`, inside the caller's transaction), it also brings what a lease action needs
    besides: the campaign's settings and rubric versions in force and the item's risk in the
    scoring run in force, so that a submit reads nothing else before it writes.
    """
    leases = Assignment.objects.select_related("item__campaign", *LEASE_PAGE_RELATED)
    last_run = ScoringRun.objects.filter(campaign_id=OuterRef("item__campaign_id")).order_by("-id")
    if lock:
        # Lock the lease row only: locking the joined item and campaign too would deadlock two
        # submits whose final-answer refresh touches each other's items (PostgreSQL).
        leases = leases.select_for_update(of=("self",)).annotate(
            campaign_settings_id=Subquery(
                CampaignSettings.objects.filter(campaign_id=OuterRef("item__campaign_id"))
                .order_by("-number")
                .values("id")[:1]
            ),
            campaign_rubric_version_id=Subquery(
                RubricVersion.objects.filter(rubric_id=OuterRef("item__campaign__rubric_id"))
                .exclude(published_at=None)
                .order_by("-number")
                .values("id")[:1]
            ),
            item_risk=Subquery(
                ItemScore.objects.filter(
                    run_id=OuterRef("item__campaign__scoring_run_id"), item_id=OuterRef("item_id")
                ).values("risk")[:1]
            ),
            last_run_status=Subquery(last_run.values("status")[:1]),
            last_run_mark=Subquery(last_run.values("judgment_mark")[:1]),
        )
    try:
        assignment = leases.get(uid=uid)
    except (Assignment.DoesNotExist, ValueError, DjangoValidationError):
        raise LeaseError("That item is not assigned to you.") from None
    if assignment.user_id != user.id:
        raise LeaseError("That item is not assigned to you.")
    if lock:
        campaign = assignment.item.campaign
        campaign.current_settings_id = assignment.campaign_settings_id
        campaign.current_rubric_version_id = assignment.campaign_rubric_version_id
    return _with_versions(assignment)


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


def _finish(assignment: Assignment, status: str) -> None:
    assignment.status = status
    assignment.ended_at = timezone.now()
    assignment.save(update_fields=["status", "ended_at"])


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
        judgment = Judgment.objects.create(
            item=item,
            annotator_id=annotator_id(user),
            kind=LabelKind.HUMAN,
            source=Source.APP,
            assignment=assignment,
            confidence=None if confidence is None else (confidence - 1) / 4,
            rationale=rationale,
            time_spent_ms=time_spent_ms,
            left_response=assignment.left_response,
            rubric_version=assignment.rubric_version,
            settings_version=campaign.settings,
            scoring_run_id=assignment.scoring_run_id,
        )
        Answer.objects.bulk_create(
            Answer(judgment=judgment, criterion=criterion, response_id=response_id, value=value)
            for criterion, response_id, value in answers
        )
        _finish(assignment, Status.SUBMITTED)
        tally = final_answers.refresh(
            campaign, [item.id], responses=[item.response_a_id, item.response_b_id], savepoint=False
        )
        # r in the scoring run in force (lease_for's annotation), else the prior (rule 2 for an unscored item).
        risk = assignment.item_risk if assignment.item_risk is not None else item.risk_prior
        if escalation.might_fire(campaign, item, tally, risk):
            escalation.run_rules(campaign, [item.id], trigger=f"judgment {judgment.id}")
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
