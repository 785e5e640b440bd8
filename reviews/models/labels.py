"""Human (and automated) answers: leases, judgments, escalations, adjudications, final answers."""

from django.conf import settings
from django.db import models
from django.utils import timezone


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
        """Move to status `to` if the state machine allows it (reviews.escalation); else a DomainError."""
        from reviews.leads.escalation import transition

        return transition(self, to, user=user, note=note, feedback=feedback)


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
