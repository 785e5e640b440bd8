"""Rubrics, campaigns and their versioned settings."""

from django.conf import settings
from django.db import models, transaction
from django.db.models import OuterRef, Subquery
from django.utils import timezone
from django.utils.functional import cached_property

from reviews.core.exceptions import ImmutableError
from reviews.models.base import AppendOnlyModel
from reviews.rubrics.definition import RubricDefinition, parse_rubric

# Published rubric versions and settings versions never change once written, so a process keeps
# those it has read, by id: the labelers' hot path then needs only their ids, which the campaign
# query brings along (CampaignQuerySet.with_versions). Filled only after the reading transaction
# commits, so a version that was rolled back is never kept.
_IMMUTABLE: dict = {}
IMMUTABLE_CACHE_SIZE = 512


def immutable(model, pk):
    """The row `pk` of an immutable model (a published RubricVersion, a CampaignSettings)."""
    key = (model, pk)
    found = _IMMUTABLE.get(key)
    if found is not None:
        return found
    row = model.objects.get(pk=pk)

    def keep():
        if len(_IMMUTABLE) >= IMMUTABLE_CACHE_SIZE:
            _IMMUTABLE.clear()
        _IMMUTABLE[key] = row

    transaction.on_commit(keep)
    return row


def forget_immutable() -> None:
    """Empty this process's cache of immutable rows (tests, whose rolled-back ids come back)."""
    _IMMUTABLE.clear()


class Rubric(models.Model):
    slug = models.SlugField(unique=True)
    title = models.CharField(max_length=200)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self):
        return self.slug

    def latest_published(self) -> "RubricVersion | None":
        return self.versions.filter(published_at__isnull=False).order_by("-number").first()

    def publish(self, definition: dict, *, user=None, note: str = "") -> "RubricVersion":
        """Validate a definition and publish it as the next immutable version."""
        parsed = parse_rubric(definition)
        with transaction.atomic():
            last = self.versions.select_for_update().order_by("-number").first()
            version = RubricVersion.objects.create(
                rubric=self,
                number=(last.number + 1) if last else 1,
                definition=parsed.to_json(),
                change_note=note,
                created_by=user,
                published_at=timezone.now(),
            )
            self.title = parsed.title
            self.save(update_fields=["title"])
        return version


class RubricVersion(models.Model):
    """One version of a rubric; drafts have no `published_at` and are the only editable ones."""

    rubric = models.ForeignKey(Rubric, on_delete=models.PROTECT, related_name="versions")
    number = models.PositiveIntegerField()
    definition = models.JSONField()
    change_note = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    published_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["rubric", "number"], name="rubricversion_unique_number")]

    def __str__(self):
        return f"{self.rubric.slug} v{self.number}"

    def save(self, *args, **kwargs):
        # A database trigger enforces the same rule for any UPDATE (see migration 0002).
        if self.pk and RubricVersion.objects.filter(pk=self.pk, published_at__isnull=False).exists():
            raise ImmutableError(f"{self} is published and cannot be changed")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        if self.is_published:
            raise ImmutableError(f"{self} is published and cannot be deleted")
        return super().delete(*args, **kwargs)

    @property
    def is_published(self) -> bool:
        return self.published_at is not None

    @cached_property
    def parsed(self) -> RubricDefinition:
        return parse_rubric(self.definition)


class CampaignQuerySet(models.QuerySet):
    def with_versions(self):
        """Annotate the ids of the settings version and the published rubric version in force, so
        that `settings` and `rubric_version()` come from the process's cache, not two more queries."""
        return self.annotate(
            current_settings_id=Subquery(
                CampaignSettings.objects.filter(campaign=OuterRef("pk")).order_by("-number").values("id")[:1]
            ),
            current_rubric_version_id=Subquery(
                RubricVersion.objects.filter(rubric=OuterRef("rubric_id"), published_at__isnull=False)
                .order_by("-number")
                .values("id")[:1]
            ),
        )


class Campaign(models.Model):
    slug = models.SlugField(unique=True)
    title = models.CharField(max_length=200)
    rubric = models.ForeignKey(Rubric, null=True, blank=True, on_delete=models.PROTECT, related_name="campaigns")
    created_at = models.DateTimeField(default=timezone.now)
    # The scoring run whose scores are in force; switched only when a run commits.
    scoring_run = models.ForeignKey(
        "reviews.ScoringRun", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    objects = CampaignQuerySet.as_manager()

    def __str__(self):
        return self.slug

    @cached_property
    def settings(self) -> "CampaignSettings":
        """The settings version in force (created with defaults on first use)."""
        if self.__dict__.get("current_settings_id") is not None:
            return immutable(CampaignSettings, self.current_settings_id)
        current = self.settings_versions.order_by("-number").first()
        return current or self.update_settings(note="defaults")

    def update_settings(self, *, user=None, note: str = "", **changes) -> "CampaignSettings":
        """Record a new settings version: the last one with `changes` applied."""
        with transaction.atomic():
            last = self.settings_versions.select_for_update().order_by("-number").first()
            values = last.values() if last else {}
            values.update(changes)
            version = CampaignSettings(
                campaign=self,
                number=(last.number + 1) if last else 1,
                created_by=user,
                note=note,
                **values,
            )
            version.full_clean(exclude=["campaign", "created_by"])
            version.save()
        self.__dict__["settings"] = version
        self.__dict__.pop("current_settings_id", None)
        return version

    def rubric_version(self) -> "RubricVersion | None":
        """The published rubric version new judgments are made under."""
        if not self.rubric_id:
            return None
        if "current_rubric_version_id" in self.__dict__:  # CampaignQuerySet.with_versions
            current = self.current_rubric_version_id
            return immutable(RubricVersion, current) if current is not None else None
        # One query, without loading the rubric row.
        published = RubricVersion.objects.filter(rubric_id=self.rubric_id, published_at__isnull=False)
        return published.order_by("-number").first()


class CampaignSettings(AppendOnlyModel):
    """One immutable version of a campaign's settings; every save is a new version."""

    SETTING_FIELDS = (
        "lambda_risk",
        "lambda_uncertainty",
        "lambda_diversity",
        "budget_total",
        "budget_daily",
        "overlap_k",
        "audit_share",
        "gold_rate",
        "lease_minutes",
        "tau_risk",
        "tau_disagree",
        "tau_conf",
        "sla_hours",
        "rescore_every",
        "uncertainty_mode",
    )

    class Uncertainty(models.TextChoices):
        ENTROPY = "entropy", "Entropy"
        FISHER = "fisher", "Fisher information gain"

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="settings_versions")
    number = models.PositiveIntegerField()
    lambda_risk = models.FloatField(default=1.0)
    lambda_uncertainty = models.FloatField(default=1.0)
    lambda_diversity = models.FloatField(default=1.0)
    budget_total = models.PositiveIntegerField(null=True, blank=True, help_text="judgments; empty = no cap")
    budget_daily = models.PositiveIntegerField(null=True, blank=True)
    overlap_k = models.PositiveSmallIntegerField(default=2)
    audit_share = models.FloatField(default=0.1)
    gold_rate = models.FloatField(default=0.0)
    lease_minutes = models.PositiveIntegerField(default=15)
    tau_risk = models.FloatField(default=0.8)
    tau_disagree = models.FloatField(default=0.5)
    tau_conf = models.FloatField(default=2.0, help_text="on the 1-5 confidence scale")
    sla_hours = models.FloatField(default=24.0)
    rescore_every = models.PositiveIntegerField(default=50)
    # How a pair's part of h is measured (README "Scoring"); the automated labels count either way.
    uncertainty_mode = models.CharField(max_length=16, choices=Uncertainty.choices, default=Uncertainty.ENTROPY)
    note = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = "campaign settings"
        constraints = [
            models.UniqueConstraint(fields=["campaign", "number"], name="settings_unique_number"),
            models.CheckConstraint(
                condition=models.Q(audit_share__gte=0, audit_share__lte=1), name="settings_audit_share_0_1"
            ),
            models.CheckConstraint(
                condition=models.Q(gold_rate__gte=0, gold_rate__lte=1), name="settings_gold_rate_0_1"
            ),
            models.CheckConstraint(condition=models.Q(overlap_k__gte=1), name="settings_overlap_k_positive"),
            models.CheckConstraint(
                condition=models.Q(lambda_risk__gte=0, lambda_uncertainty__gte=0, lambda_diversity__gte=0),
                name="settings_lambdas_nonnegative",
            ),
        ]

    def __str__(self):
        return f"{self.campaign.slug} settings v{self.number}"

    def values(self) -> dict:
        return {name: getattr(self, name) for name in self.SETTING_FIELDS}

    def clean(self):
        from django.core.exceptions import ValidationError

        if self.lambda_risk + self.lambda_uncertainty + self.lambda_diversity <= 0:
            raise ValidationError("At least one λ weight must be positive.")
        for name in ("tau_risk", "tau_disagree"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValidationError({name: "Must be between 0 and 1."})
        if not 1 <= self.tau_conf <= 5:
            raise ValidationError({"tau_conf": "Must be on the 1-5 scale."})
        if self.lease_minutes < 1:
            raise ValidationError({"lease_minutes": "Must be at least 1 minute."})
        if self.sla_hours <= 0:
            raise ValidationError({"sla_hours": "Must be positive."})
