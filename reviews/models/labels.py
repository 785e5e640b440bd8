"""Human (and automated) answers: leases, judgments, escalations, adjudications, final answers."""

from django.conf import settings
from django.db import models, transaction
from django.utils import timezone

from reviews.core.exceptions import ClaimConflict, EscalationError, IllegalTransition
from reviews.core.roles import Role, is_lead, role_of
from reviews.models.audit import FeedbackEvent
from reviews.models.content import Item


class LabelKind(models.TextChoices):
    HUMAN = "human", "Human"
    MODEL = "model", "Model"


class Source(models.TextChoices):
    APP = "app", "Made in the app"
    IMPORT = "import", "Imported"


class Assignment(models.Model):
    """A lease of an item to a labeler; it expires so nothing is lost when someone walks away."""

    class Status(models.TextChoices):
        LIVE = "live", "Live"
        SUBMITTED = "submitted", "Submitted"
        SKIPPED = "skipped", "Skipped"
        ESCALATED = "escalated", "Escalated"
        EXPIRED = "expired", "Expired"

    class Reason(models.TextChoices):
        UTILITY = "utility", "Chosen by utility"
        AUDIT = "audit", "Audit sample"
        GOLD = "gold", "Gold item"
        ORDER = "order", "Import order (no scoring run yet)"

    uid = models.UUIDField(unique=True)
    item = models.ForeignKey("reviews.Item", on_delete=models.CASCADE, related_name="assignments")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="assignments")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.LIVE)
    left_response = models.ForeignKey("reviews.Response", on_delete=models.CASCADE, related_name="+")
    reason = models.CharField(max_length=16, choices=Reason.choices, default=Reason.ORDER)
    selection_probability = models.FloatField(null=True, blank=True)
    rubric_version = models.ForeignKey("reviews.RubricVersion", on_delete=models.PROTECT, related_name="+")
    settings_version = models.ForeignKey("reviews.CampaignSettings", on_delete=models.PROTECT, related_name="+")
    scoring_run = models.ForeignKey(
        "reviews.ScoringRun", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["item", "user"], condition=models.Q(status="live"), name="assignment_one_live_per_labeler"
            ),
        ]
        indexes = [models.Index(fields=["item", "status", "expires_at"], name="assignment_live_lookup")]

    def __str__(self):
        return f"lease of item {self.item_id} to user {self.user_id} ({self.status})"


class Judgment(models.Model):
    """One annotator's answers for one item (answers are rows of `Answer`)."""

    item = models.ForeignKey("reviews.Item", on_delete=models.CASCADE, related_name="judgments", db_index=False)
    annotator = models.ForeignKey("reviews.Annotator", on_delete=models.PROTECT, related_name="judgments")
    kind = models.CharField(max_length=8, choices=LabelKind.choices, default=LabelKind.HUMAN)
    source = models.CharField(max_length=8, choices=Source.choices, default=Source.APP)
    assignment = models.OneToOneField(
        Assignment, null=True, blank=True, on_delete=models.PROTECT, related_name="judgment"
    )
    # Confidence on FORMATS.md's 0..1 scale (the app's 1-5 scale maps to (c - 1) / 4); null = not given.
    confidence = models.FloatField(null=True, blank=True)
    rationale = models.TextField(blank=True)
    time_spent_ms = models.PositiveIntegerField(null=True, blank=True)
    left_response = models.ForeignKey(
        "reviews.Response", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    rubric_version = models.ForeignKey("reviews.RubricVersion", on_delete=models.PROTECT, related_name="+")
    settings_version = models.ForeignKey(
        "reviews.CampaignSettings", on_delete=models.PROTECT, related_name="+", db_index=False
    )
    scoring_run = models.ForeignKey(
        "reviews.ScoringRun", null=True, blank=True, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["item", "annotator"], name="judgment_one_per_annotator"),
            models.CheckConstraint(
                condition=models.Q(confidence__isnull=True) | models.Q(confidence__gte=0, confidence__lte=1),
                name="judgment_confidence_0_1",
            ),
        ]

    def __str__(self):
        return f"judgment {self.pk} of item {self.item_id} by annotator {self.annotator_id}"


class Escalation(models.Model):
    """An item sent to the leads, and the state machine a lead drives it through.

    States: open → in_review (a lead claims it) → resolved (adjudicated) | dismissed (with a
    reason); in_review → open when the lead releases it; resolved or dismissed → open when a
    lead reopens it. `transition` is the only way to change a status: it checks the move and
    who makes it, and writes the FeedbackEvent; anything else raises an EscalationError. While
    an item has an open or in-review escalation it is out of the labelers' queue (`Item.escalated`).
    """

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        IN_REVIEW = "in_review", "In review"
        RESOLVED = "resolved", "Resolved"
        DISMISSED = "dismissed", "Dismissed"

    class Reason(models.TextChoices):
        AMBIGUOUS = "ambiguous", "Ambiguous under the rubric"
        HARMFUL = "harmful", "Harmful content"
        BROKEN = "broken", "Broken item"
        OTHER = "other", "Other"
        RULE = "rule", "Raised by a rule"

    uid = models.UUIDField(unique=True)
    campaign = models.ForeignKey("reviews.Campaign", on_delete=models.CASCADE, related_name="escalations")
    item = models.ForeignKey("reviews.Item", on_delete=models.CASCADE, related_name="escalations")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    reason = models.CharField(max_length=16, choices=Reason.choices)
    comment = models.TextField(blank=True)
    # The rules that fired, each {"rule", "value", "threshold"}.
    rules = models.JSONField(default=list)
    severity = models.FloatField(default=0.0, help_text="the item's risk when escalated")
    opened_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    claimed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    claimed_at = models.DateTimeField(null=True, blank=True)
    resolution_note = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            # The leads' queue: open escalations by severity, then age.
            models.Index(fields=["campaign", "status", "-severity", "created_at"], name="escalation_queue"),
        ]

    def __str__(self):
        return f"escalation {self.uid} of item {self.item_id} ({self.status})"

    def transition(self, to: str, *, user, note: str = "", feedback: dict | None = None) -> "Escalation":
        """Move to status `to` if the state machine allows it; record it; return the fresh row.

        Only leads act; an escalation in review belongs to the lead who claimed it (an admin may
        release it). Dismissing needs a reason. Raises EscalationError (IllegalTransition,
        ClaimConflict) and changes nothing otherwise. This instance is refreshed too.
        """
        if user is None or not is_lead(user):
            raise EscalationError("Only leads can claim, resolve, dismiss or reopen escalations.")
        note = (note or "").strip()
        Status = self.Status
        with transaction.atomic():
            # The row lock makes racing leads queue up here; the loser then sees the winner's status.
            current = Escalation.objects.select_for_update(of=("self",)).select_related("campaign").get(pk=self.pk)
            source = current.status
            if (source, to) not in TRANSITIONS:
                if source == Status.IN_REVIEW and to == Status.IN_REVIEW:
                    if current.claimed_by_id == user.id:
                        return current  # a repeated claim by its holder changes nothing
                    raise ClaimConflict(current.held_message())
                raise IllegalTransition(
                    f"This escalation is {current.get_status_display().lower()}: it cannot be {PAST[to]} now."
                )
            if source == Status.IN_REVIEW and current.claimed_by_id != user.id:
                may_release = to == Status.OPEN and role_of(user) == Role.ADMIN
                if not may_release:
                    raise ClaimConflict(current.held_message())
            if to == Status.DISMISSED and not note:
                raise EscalationError("Give a reason for dismissing the escalation.")
            now = timezone.now()
            changes = {"status": to, "updated_at": now}
            if to == Status.IN_REVIEW:
                changes.update(claimed_by=user, claimed_at=now)
            elif to == Status.OPEN:
                changes.update(claimed_by=None, claimed_at=None, closed_at=None)
            else:
                changes.update(closed_at=now, resolution_note=note)
            # Conditional on the status read under the lock: a belt to the lock's braces.
            if Escalation.objects.filter(pk=current.pk, status=source).update(**changes) != 1:
                raise ClaimConflict("Another lead changed this escalation at the same moment; reload and try again.")
            for name, value in changes.items():
                setattr(current, name, value)
            Escalation.sync_item_flags([current.item_id])
            FeedbackEvent.record(
                current.campaign,
                TRANSITIONS[(source, to)],
                {
                    "escalation": str(current.uid),
                    "from": source,
                    "to": to,
                    **({"note": note} if note else {}),
                    **(feedback or {}),
                },
                actor=user,
                item=current.item_id,
            )
        self.__dict__.update({k: v for k, v in current.__dict__.items() if not k.startswith("_")})
        return current

    def held_message(self) -> str:
        """Who holds this escalation in review, and since when."""
        who = self.claimed_by.get_username() if self.claimed_by_id else "another lead"
        since = timezone.localtime(self.claimed_at).strftime("%H:%M") if self.claimed_at else "just now"
        return f"{who} claimed this escalation (at {since}) and is reviewing it; pick another one."

    @staticmethod
    def sync_item_flags(item_ids) -> None:
        """Item.escalated = the item has an open or in-review escalation."""
        item_ids = list(item_ids)
        active = set(
            Escalation.objects.filter(item_id__in=item_ids, status__in=ACTIVE).values_list("item_id", flat=True)
        )
        Item.objects.filter(id__in=active, escalated=False).update(escalated=True)
        Item.objects.filter(id__in=set(item_ids) - active, escalated=True).update(escalated=False)


_Status = Escalation.Status
ACTIVE = (_Status.OPEN, _Status.IN_REVIEW)
# (from, to) → the feedback event that records the move: the whole state machine.
TRANSITIONS = {
    (_Status.OPEN, _Status.IN_REVIEW): FeedbackEvent.Action.ESCALATION_CLAIMED,
    (_Status.IN_REVIEW, _Status.OPEN): FeedbackEvent.Action.ESCALATION_RELEASED,
    (_Status.IN_REVIEW, _Status.RESOLVED): FeedbackEvent.Action.ADJUDICATED,
    (_Status.IN_REVIEW, _Status.DISMISSED): FeedbackEvent.Action.ESCALATION_DISMISSED,
    (_Status.RESOLVED, _Status.OPEN): FeedbackEvent.Action.ESCALATION_REOPENED,
    (_Status.DISMISSED, _Status.OPEN): FeedbackEvent.Action.ESCALATION_REOPENED,
}
PAST = {"in_review": "claimed", "open": "reopened", "resolved": "resolved", "dismissed": "dismissed"}


class Adjudication(models.Model):
    """A lead's final answers for an item; a revision is a new row (history kept)."""

    item = models.ForeignKey("reviews.Item", on_delete=models.CASCADE, related_name="adjudications")
    lead = models.ForeignKey("reviews.Annotator", on_delete=models.PROTECT, related_name="adjudications")
    source = models.CharField(max_length=8, choices=Source.choices, default=Source.APP)
    escalation = models.ForeignKey(
        Escalation, null=True, blank=True, on_delete=models.PROTECT, related_name="adjudications"
    )
    rationale = models.TextField(blank=True)
    rubric_ambiguous = models.BooleanField(default=False)
    ambiguity_note = models.TextField(blank=True)
    # The rubric draft (or published version) that answers an "ambiguous rubric" note.
    ambiguity_addressed_by = models.ForeignKey(
        "reviews.RubricVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="addressed_notes"
    )
    rubric_version = models.ForeignKey("reviews.RubricVersion", on_delete=models.PROTECT, related_name="+")
    settings_version = models.ForeignKey("reviews.CampaignSettings", on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self):
        return f"adjudication {self.pk} of item {self.item_id}"


class Answer(models.Model):
    """One answer to one criterion (for one response when the criterion is per response)."""

    # Looked up through the unique indexes below, which start with these columns.
    judgment = models.ForeignKey(
        Judgment, null=True, blank=True, on_delete=models.CASCADE, related_name="answers", db_index=False
    )
    adjudication = models.ForeignKey(
        Adjudication, null=True, blank=True, on_delete=models.CASCADE, related_name="answers", db_index=False
    )
    criterion = models.CharField(max_length=100)
    response = models.ForeignKey(
        "reviews.Response", null=True, blank=True, on_delete=models.CASCADE, related_name="answers"
    )
    # Choice option, pairwise response key or "tie", or a scale integer as text.
    value = models.CharField(max_length=255)
    # Per-label confidence (0..1) when an import gave one.
    confidence = models.FloatField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=(
                    models.Q(judgment__isnull=False, adjudication__isnull=True)
                    | models.Q(judgment__isnull=True, adjudication__isnull=False)
                ),
                name="answer_belongs_to_one_parent",
            ),
            # One answer per criterion (and response) within a judgment or an adjudication.
            models.UniqueConstraint(
                fields=["judgment", "criterion", "response"], name="answer_unique_judgment_response"
            ),
            models.UniqueConstraint(
                fields=["judgment", "criterion"],
                condition=models.Q(judgment__isnull=False, response__isnull=True),
                name="answer_unique_judgment_item",
            ),
            models.UniqueConstraint(
                fields=["adjudication", "criterion", "response"], name="answer_unique_adjudication_response"
            ),
            models.UniqueConstraint(
                fields=["adjudication", "criterion"],
                condition=models.Q(adjudication__isnull=False, response__isnull=True),
                name="answer_unique_adjudication_item",
            ),
        ]

    def __str__(self):
        return f"{self.criterion}={self.value}"


class FinalAnswer(models.Model):
    """The derived final answer (DESIGN.md "Final answers") for a criterion of an item or a response."""

    class Basis(models.TextChoices):
        ADJUDICATION = "adjudication", "Lead adjudication"
        UNANIMOUS = "unanimous", "Unanimous human judgments"

    campaign = models.ForeignKey("reviews.Campaign", on_delete=models.CASCADE, related_name="final_answers")
    criterion = models.CharField(max_length=100)
    # Exactly one of item (item-level criteria) and response (per-response criteria).
    # Looked up through the partial unique indexes below.
    item = models.ForeignKey(
        "reviews.Item", null=True, blank=True, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    response = models.ForeignKey(
        "reviews.Response",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="final_answers",
        db_index=False,
    )
    value = models.CharField(max_length=255)
    basis = models.CharField(max_length=16, choices=Basis.choices)
    human_votes = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=(
                    models.Q(item__isnull=False, response__isnull=True)
                    | models.Q(item__isnull=True, response__isnull=False)
                ),
                name="finalanswer_item_xor_response",
            ),
            models.UniqueConstraint(
                fields=["item", "criterion"], condition=models.Q(item__isnull=False), name="finalanswer_unique_item"
            ),
            models.UniqueConstraint(
                fields=["response", "criterion"],
                condition=models.Q(response__isnull=False),
                name="finalanswer_unique_response",
            ),
        ]

    def __str__(self):
        return f"{self.criterion}={self.value} ({self.basis})"
