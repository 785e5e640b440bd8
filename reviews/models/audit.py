"""The feedback log, scoring runs, metric snapshots and dataset versions."""

from collections.abc import Iterable

from django.conf import settings
from django.db import models
from django.utils import timezone

from reviews.core import sql
from reviews.core.roles import role_of
from reviews.core.rows import insert_row
from reviews.models.base import AppendOnlyModel

# "Whatever is in force on the campaign" for FeedbackEvent.record's context arguments.
IN_FORCE = object()

EVENT_COLUMNS = [
    "campaign_id",
    "item_id",
    "actor_id",
    "annotator_id",
    "role",
    "action",
    "feedback",
    "rubric_version_id",
    "settings_version_id",
    "scoring_run_id",
    "created_at",
]


def _pk(value):
    """A model instance's primary key; an id or None as it is."""
    return getattr(value, "pk", value)


class FeedbackEvent(AppendOnlyModel):
    """Append-only log of every human action: (prompt, responses, feedback) plus its context.

    The ORM refuses updates and deletes (AppendOnlyModel), and a database trigger refuses
    UPDATE (and DELETE on PostgreSQL) from any other path; see migration 0002.
    """

    class Action(models.TextChoices):
        IMPORTED = "imported", "Imported with labels"
        JUDGED = "judged", "Judged"
        SKIPPED = "skipped", "Skipped"
        ESCALATED = "escalated", "Escalated"
        ESCALATION_CLAIMED = "escalation_claimed", "Escalation claimed"
        ESCALATION_DISMISSED = "escalation_dismissed", "Escalation dismissed"
        ADJUDICATED = "adjudicated", "Adjudicated"
        REQUEUED = "requeued", "Re-queued"
        GOLD_CHANGED = "gold_changed", "Gold status changed"
        EXCLUSION_CHANGED = "exclusion_changed", "Excluded or returned"
        SETTINGS_CHANGED = "settings_changed", "Campaign settings changed"
        RUBRIC_PUBLISHED = "rubric_published", "Rubric version published"
        ESCALATION_RELEASED = "escalation_released", "Escalation released by its lead"
        ESCALATION_REOPENED = "escalation_reopened", "Escalation reopened"
        MEMBERSHIP_CHANGED = "membership_changed", "Campaign membership changed"
        DATASET_CREATED = "dataset_created", "Dataset version created"
        INGESTED = "ingested", "Ingested through the API"

    # The composite indexes below serve campaign and item lookups; the log is write-heavy,
    # so rarely queried references carry no index of their own.
    campaign = models.ForeignKey(
        "reviews.Campaign", on_delete=models.PROTECT, related_name="feedback_events", db_index=False
    )
    item = models.ForeignKey(
        "reviews.Item", null=True, blank=True, on_delete=models.PROTECT, related_name="events", db_index=False
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    annotator = models.ForeignKey(
        "reviews.Annotator", null=True, blank=True, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    role = models.CharField(max_length=16, blank=True)
    action = models.CharField(max_length=32, choices=Action.choices)
    feedback = models.JSONField(default=dict)
    rubric_version = models.ForeignKey(
        "reviews.RubricVersion", null=True, blank=True, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    settings_version = models.ForeignKey(
        "reviews.CampaignSettings", null=True, blank=True, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    scoring_run = models.ForeignKey(
        "reviews.ScoringRun", null=True, blank=True, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            models.Index(fields=["campaign", "created_at"], name="event_campaign_time"),
            models.Index(fields=["item", "created_at"], name="event_item_timeline"),
        ]

    @classmethod
    def record(
        cls,
        campaign,
        action: str,
        feedback: dict | None = None,
        *,
        actor=None,
        role: str | None = None,
        item=None,
        annotator=None,
        rubric_version=IN_FORCE,
        settings_version=IN_FORCE,
        scoring_run=IN_FORCE,
        created_at=None,
        per_item: Iterable[tuple[int, dict]] | None = None,
    ):
        """Append the event of one human action with the context it was taken in; return the event.

        Every writer of the log comes through here, so every event carries the same context: the
        campaign's published rubric version, settings version and scoring run in force unless
        given (an instance, an id or None), and the actor's role unless given. With `per_item`,
        pairs of an item id and that item's feedback (merged over `feedback`), it writes one
        event per item in one COPY (PostgreSQL) or executemany instead and returns their number:
        a bulk action, an import or a rules pass may write 100k events.
        """
        if rubric_version is IN_FORCE:
            rubric_version = campaign.rubric_version()
        if settings_version is IN_FORCE:
            settings_version = campaign.settings
        if scoring_run is IN_FORCE:
            scoring_run = campaign.scoring_run_id
        if role is None:  # callers that pass the actor as an id pass the role too
            held = role_of(actor) if actor is not None else None
            role = held.value if held else ""
        feedback = feedback or {}
        context = {
            "campaign_id": campaign.pk,
            "actor_id": _pk(actor),
            "annotator_id": _pk(annotator),
            "role": role,
            "action": action,
            "rubric_version_id": _pk(rubric_version),
            "settings_version_id": _pk(settings_version),
            "scoring_run_id": _pk(scoring_run),
            "created_at": created_at or timezone.now(),
        }
        if per_item is None:
            # One row through the fast insert (every submit writes one); the ORM's save would
            # cost more CPU than the rest of the event's work.
            return insert_row(cls, item_id=_pk(item), feedback=feedback, **context)
        rows = []
        for item_id, own in per_item:
            row = {**context, "item_id": item_id, "feedback": {**feedback, **own}}
            rows.append(tuple(row[name] for name in EVENT_COLUMNS))
        sql.insert_rows(cls, EVENT_COLUMNS, rows)
        return len(rows)


class ScoringRun(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    campaign = models.ForeignKey("reviews.Campaign", on_delete=models.CASCADE, related_name="scoring_runs")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    settings_version = models.ForeignKey(
        "reviews.CampaignSettings", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    weights = models.JSONField(default=dict)
    model_versions = models.JSONField(default=dict)
    item_count = models.PositiveIntegerField(default=0)
    timings = models.JSONField(default=dict)
    metrics = models.JSONField(default=dict)
    trigger = models.CharField(max_length=64, blank=True)
    # The newest judgment id when the run was requested: "N judgments since the last run" counts past it.
    judgment_mark = models.PositiveBigIntegerField(default=0)
    error = models.TextField(blank=True)
    phase = models.CharField(max_length=32, blank=True)
    requested_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    # Written after every chunk: a running run whose heartbeat stops was lost with its worker.
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["campaign", "-requested_at"], name="scoringrun_recent")]

    def __str__(self):
        return f"{self.campaign} run {self.pk} ({self.status})"


class ItemScore(models.Model):
    """An item's utility terms under one scoring run (the campaign's current run is in force)."""

    run = models.ForeignKey(ScoringRun, on_delete=models.CASCADE, related_name="scores")
    item = models.ForeignKey("reviews.Item", on_delete=models.CASCADE, related_name="scores")
    risk = models.FloatField()
    uncertainty = models.FloatField()
    diversity = models.FloatField()
    utility = models.FloatField()
    selected = models.BooleanField(default=False)
    audit = models.BooleanField(default=False)
    selection_probability = models.FloatField(default=0.0)
    # Serving order within the active set (null: not selected).
    rank = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "item"], name="itemscore_unique")]
        indexes = [
            # The queue: the current run's active set in serving order.
            models.Index(fields=["run", "rank"], name="itemscore_queue_order"),
            # The item browser sorted by utility or risk (reviews.data.item_browser._score_sorted).
            models.Index(fields=["run", "utility", "item"], name="itemscore_by_utility"),
            models.Index(fields=["run", "risk", "item"], name="itemscore_by_risk"),
        ]

    def __str__(self):
        return f"item {self.item_id} in run {self.run_id}: u={self.utility:.3f}"


class MetricSnapshot(models.Model):
    campaign = models.ForeignKey("reviews.Campaign", on_delete=models.CASCADE, related_name="metric_snapshots")
    name = models.CharField(max_length=100)
    slice = models.CharField(max_length=255, blank=True, default="")
    value = models.FloatField(null=True, blank=True)
    data = models.JSONField(default=dict, blank=True)
    computed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["campaign", "name", "slice", "computed_at"], name="metric_series")]

    def __str__(self):
        return f"{self.name}[{self.slice}] = {self.value}"


class DatasetVersion(AppendOnlyModel):
    """An immutable export of a campaign's final answers, identified by its content hash."""

    class Format(models.TextChoices):
        PREFERENCE = "preference", "Preference JSONL"
        FULL = "full", "Full JSONL"

    uid = models.UUIDField(unique=True)
    campaign = models.ForeignKey("reviews.Campaign", on_delete=models.PROTECT, related_name="dataset_versions")
    format = models.CharField(max_length=16, choices=Format.choices)
    filters = models.JSONField(default=dict)
    counts = models.JSONField(default=dict)
    rubric_versions = models.JSONField(default=list)
    content_hash = models.CharField(max_length=64)
    size_bytes = models.PositiveBigIntegerField(default=0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
