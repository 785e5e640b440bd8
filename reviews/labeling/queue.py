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
from reviews.leads import escalation, final_answers
from reviews.models import (
    Annotator,
    Answer,
    Assignment,
    Campaign,
    Escalation,
    FeedbackEvent,
    Item,
    ItemScore,
    Judgment,
    LabelKind,
    Source,
)
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


def _annotator(user) -> Annotator:
    """The user's annotator row, looked up once per user object (so once per request)."""
    try:
        return user._reviews_annotator
    except AttributeError:
        user._reviews_annotator = Annotator.for_user(user)
        return user._reviews_annotator


def budget_state(campaign: Campaign) -> str | None:
    """'budget_spent' / 'daily_budget_spent' when the campaign's budget forbids more judgments."""
    s = campaign.settings
    if s.budget_total is None and s.budget_daily is None:
        return None
    spent = Judgment.objects.filter(item__campaign=campaign, kind=LabelKind.HUMAN, source=Source.APP)
    if s.budget_total is not None and spent.count() >= s.budget_total:
        return "budget_spent"
    if s.budget_daily is not None:
        today = timezone.now().replace(hour=0, minute=0, second=0, microsecond=0)
        if spent.filter(created_at__gte=today).count() >= s.budget_daily:
            return "daily_budget_spent"
    return None


def _eligible(campaign: Campaign, user, annotator: Annotator, now, k: int):
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
        .exclude(judgments__annotator=annotator)
        .exclude(id__in=Assignment.objects.filter(user=user, status__in=DONE).values("item_id"))
        .annotate(leases=Coalesce(Subquery(live_leases), 0))
        .filter(human_judgments__lt=Coalesce(F("judgment_target"), k) - F("leases"))
    )


def _has_room(item: Item, k: int, now) -> bool:
    """Fewer human judgments plus live leases than wanted (k, or a re-queue's target), read afresh
    (under the item's lock)."""
    leases = Assignment.objects.filter(item_id=item.id, status=Status.LIVE, expires_at__gt=now).count()
    judged = Judgment.objects.filter(item_id=item.id, kind=LabelKind.HUMAN).count()
    return leases + judged < (item.judgment_target or k)


def claim_next(campaign: Campaign, user, *, rng: random.Random | None = None) -> Claim:
    """Lease the best item this labeler may judge (or renew their open lease), atomically."""
    rng = rng or random.Random()
    if not may_work_in(user, campaign):
        return Claim(None, "not_member")
    rubric_version = campaign.rubric_version()
    if rubric_version is None:
        return Claim(None, "no_rubric")
    now = timezone.now()
    annotator = _annotator(user)
    with transaction.atomic():
        # Leases that ran out are closed first: the one-live-lease-per-item rule must not trip on them.
        Assignment.objects.filter(user=user, status=Status.LIVE, expires_at__lte=now).update(
            status=Status.EXPIRED, ended_at=now
        )
        current = (
            Assignment.objects.select_for_update(of=("self",))
            .select_related(*LEASE_PAGE_RELATED)
            .filter(user=user, item__campaign=campaign, status=Status.LIVE, expires_at__gt=now)
            .order_by("created_at")
            .first()
        )
        if current is not None:
            current.item.campaign = campaign
            return Claim(renew(current), "item")
        if blocked := budget_state(campaign):
            return Claim(None, blocked)
        settings_version = campaign.settings
        k = settings_version.overlap_k
        item, reason, probability, run = _pick(campaign, user, annotator, now, k, settings_version.gold_rate, rng)
        if item is None:
            return Claim(None, "empty")
        item.campaign = campaign
        assignment = Assignment.objects.create(
            uid=uuid.uuid4(),
            item=item,
            user=user,
            left_response=rng.choice([item.response_a, item.response_b]),
            reason=reason,
            selection_probability=probability,
            rubric_version=rubric_version,
            settings_version=settings_version,
            scoring_run=run,
            expires_at=now + timedelta(minutes=settings_version.lease_minutes),
        )
    return Claim(assignment, "item")


def _pick(campaign, user, annotator, now, k, gold_rate, rng):
    """(item, reason, selection probability, scoring run); item None when nothing is left."""
    candidates = _eligible(campaign, user, annotator, now, k)
    if gold_rate > 0 and rng.random() < gold_rate:
        gold = _lock_first(candidates.filter(is_gold=True).order_by("id"), k, now)
        if gold is not None:
            return gold, Assignment.Reason.GOLD, None, None
    candidates = candidates.filter(is_gold=False)
    run = campaign.scoring_run
    if run is None:  # no scoring run yet: import order
        return _lock_first(candidates.order_by("id"), k, now), Assignment.Reason.ORDER, None, None
    item = _lock_first(candidates.filter(scores__run=run, scores__selected=True).order_by("scores__rank"), k, now)
    if item is None:
        return None, None, None, None
    score = ItemScore.objects.get(run=run, item=item)
    reason = Assignment.Reason.AUDIT if score.audit else Assignment.Reason.UTILITY
    return item, reason, score.selection_probability, run


CANDIDATES_PER_TRY = 20


def _lock_first(queryset, k: int, now) -> Item | None:
    """The first candidate that still has room, locked so that no other claimer takes it meanwhile.

    On PostgreSQL a first pass locks candidate rows with SKIP LOCKED (a row another claimer
    holds is passed over, not waited for); when every candidate is held, a second pass waits for
    the locks, so the last places of an item still fill up to k. Room is re-read under the lock.
    SQLite has no row locks, but its IMMEDIATE transactions already serialize claimers.
    """
    ids = list(queryset.values_list("id", flat=True)[:CANDIDATES_PER_TRY])
    passes = [True, False] if connection.features.has_select_for_update_skip_locked else [None]
    for skip_locked in passes:
        for item_id in ids:
            try:
                # A savepoint per candidate: rolling it back releases the lock of a full item,
                # so two waiting claimers never hold each other's rows (no deadlock).
                with transaction.atomic():
                    # The page needs the prompt and both responses: fetched with the lock, not after.
                    rows = Item.objects.select_related("prompt", "response_a", "response_b").filter(id=item_id)
                    if skip_locked is not None:
                        rows = rows.select_for_update(skip_locked=skip_locked, of=("self",))
                    item = rows.first()
                    if item is not None and _has_room(item, k, now):
                        return item
                    raise _Full
            except _Full:
                continue
    return None


class _Full(Exception):
    """A candidate turned out full (or locked): roll its savepoint back."""


# What the compare page and the lease actions read of a lease, in the query that fetches it.
LEASE_PAGE_RELATED = (
    "item__prompt",
    "item__response_a",
    "item__response_b",
    "left_response",
    "rubric_version",
    "settings_version",
)


def renew(assignment: Assignment) -> Assignment:
    """Extend a live lease while its page is open."""
    minutes = assignment.settings_version.lease_minutes
    assignment.expires_at = timezone.now() + timedelta(minutes=minutes)
    assignment.save(update_fields=["expires_at"])
    return assignment


def lease_for(user, uid, *, lock: bool = False) -> Assignment:
    """The labeler's own lease by its public id; anything else is a LeaseError with a reason."""
    leases = Assignment.objects.select_related("item__campaign", *LEASE_PAGE_RELATED)
    if lock:
        # Lock the lease row only: locking the joined item and campaign too would deadlock two
        # submits whose final-answer refresh touches each other's items (PostgreSQL).
        leases = leases.select_for_update(of=("self",))
    try:
        assignment = leases.get(uid=uid)
    except (Assignment.DoesNotExist, ValueError, DjangoValidationError):
        raise LeaseError("That item is not assigned to you.") from None
    if assignment.user_id != user.id:
        raise LeaseError("That item is not assigned to you.")
    return assignment


def _lock_live(user, uid) -> Assignment:
    """Lock the labeler's lease for an action; refuse a finished, expired or foreign one."""
    assignment = lease_for(user, uid, lock=True)
    if assignment.status != Status.LIVE:
        raise AlreadyDone(f"This item was already {assignment.get_status_display().lower()}.")
    if assignment.expires_at <= timezone.now():
        raise LeaseError("Your lease on this item expired, so it went back to the queue. Nothing was saved.")
    return assignment


def _event(assignment: Assignment, user, action: str, feedback: dict, annotator=None) -> FeedbackEvent:
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
        annotator=annotator or _annotator(user),
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
) -> Judgment:
    """Record a judgment for the labeler's live lease: answers are (criterion, response id or None, value).

    A second submit of the same lease raises AlreadyDone and writes nothing.
    """
    with transaction.atomic():
        assignment = _lock_live(user, uid)
        item = assignment.item
        annotator = _annotator(user)
        judgment = Judgment.objects.create(
            item=item,
            annotator=annotator,
            kind=LabelKind.HUMAN,
            source=Source.APP,
            assignment=assignment,
            confidence=None if confidence is None else (confidence - 1) / 4,
            rationale=rationale,
            time_spent_ms=time_spent_ms,
            left_response=assignment.left_response,
            rubric_version=assignment.rubric_version,
            settings_version=item.campaign.settings,
            scoring_run=assignment.scoring_run,
        )
        Answer.objects.bulk_create(
            Answer(judgment=judgment, criterion=criterion, response_id=response_id, value=value)
            for criterion, response_id, value in answers
        )
        _finish(assignment, Status.SUBMITTED)
        final_answers.refresh(item.campaign, [item.id])
        escalation.run_rules(item.campaign, [item.id], trigger=f"judgment {judgment.id}")
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
            annotator=annotator,
        )
    # After the commit: the rescoring trigger must never cost the labeler their judgment.
    maybe_rescore_after_judgments(item.campaign)
    return judgment


def skip(user, uid, *, time_spent_ms: int | None = None) -> None:
    """The labeler passes on the item; it goes back to the queue for others, never to them."""
    with transaction.atomic():
        assignment = _lock_live(user, uid)
        _finish(assignment, Status.SKIPPED)
        _event(assignment, user, FeedbackEvent.Action.SKIPPED, {"time_spent_ms": time_spent_ms})


def escalate(user, uid, *, reason: str, comment: str, time_spent_ms: int | None = None) -> Escalation:
    """The labeler sends the item to the leads; it leaves the labelers' queue until resolved."""
    if reason not in {
        Escalation.Reason.AMBIGUOUS,
        Escalation.Reason.HARMFUL,
        Escalation.Reason.BROKEN,
        Escalation.Reason.OTHER,
    }:
        raise DomainError("Choose a reason for the escalation.")
    with transaction.atomic():
        assignment = _lock_live(user, uid)
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
