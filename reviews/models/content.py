"""What gets judged: prompts, responses and the items that pair them; and who judges."""

from django.conf import settings
from django.db import models
from django.utils import timezone


class Annotator(models.Model):
    """Anyone whose answers are stored: an app user, or an external annotator kept by name."""

    name = models.CharField(max_length=200)
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="annotator"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            # External names and usernames live in separate namespaces.
            models.UniqueConstraint(
                fields=["name"], condition=models.Q(user__isnull=True), name="annotator_unique_external_name"
            ),
        ]

    def __str__(self):
        return self.name

    @classmethod
    def for_user(cls, user) -> "Annotator":
        annotator, _ = cls.objects.get_or_create(user=user, defaults={"name": user.get_username()})
        return annotator


class Prompt(models.Model):
    # Indexes that a composite unique index already covers are left out: each costs every insert.
    campaign = models.ForeignKey("reviews.Campaign", on_delete=models.CASCADE, related_name="prompts", db_index=False)
    external_id = models.CharField(max_length=255)
    # A string, or a chat transcript: a list of {"role", "content"}.
    content = models.JSONField()
    # The transcript flattened to text, for search and features.
    text = models.TextField()
    content_hash = models.CharField(max_length=64)
    # Text features (scoring.features), computed once by the first scoring run that needs them.
    features = models.BinaryField(null=True, blank=True, editable=False)
    features_version = models.PositiveSmallIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["campaign", "external_id"], name="prompt_unique_external_id")]

    def __str__(self):
        return self.external_id

    @property
    def is_chat(self) -> bool:
        return isinstance(self.content, list)


class Response(models.Model):
    """One model output to a prompt, shared by every item that shows it."""

    prompt = models.ForeignKey(Prompt, on_delete=models.CASCADE, related_name="responses", db_index=False)
    key = models.CharField(max_length=255)
    model = models.CharField(max_length=255)
    text = models.TextField()
    features = models.BinaryField(null=True, blank=True, editable=False)
    features_version = models.PositiveSmallIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["prompt", "key"], name="response_unique_key")]

    def __str__(self):
        return f"{self.prompt.external_id}/{self.key}"


class Item(models.Model):
    """A pair of responses to one prompt, in a campaign."""

    campaign = models.ForeignKey("reviews.Campaign", on_delete=models.CASCADE, related_name="items", db_index=False)
    external_id = models.CharField(max_length=255)
    prompt = models.ForeignKey(Prompt, on_delete=models.CASCADE, related_name="items")
    response_a = models.ForeignKey(Response, on_delete=models.CASCADE, related_name="+")
    response_b = models.ForeignKey(Response, on_delete=models.CASCADE, related_name="+")
    risk_prior = models.FloatField(null=True, blank=True)
    tags = models.JSONField(default=list, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    # SHA-256 of the canonical import line, labels included: re-importing the same content
    # is a no-op, different content (new labels too) under the same external_id a conflict.
    content_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=timezone.now)

    # Pool state, kept up to date by the functions that change it.
    excluded = models.BooleanField(default=False)
    is_gold = models.BooleanField(default=False)
    gold_answers = models.JSONField(null=True, blank=True)
    human_judgments = models.PositiveIntegerField(default=0)
    # Human judgments wanted; null = the campaign's overlap k. Re-queueing raises it (pool_actions).
    judgment_target = models.PositiveIntegerField(null=True, blank=True)
    resolved = models.BooleanField(default=False)
    adjudicated = models.BooleanField(default=False)
    escalated = models.BooleanField(default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["campaign", "external_id"], name="item_unique_external_id"),
            models.CheckConstraint(
                condition=~models.Q(response_a=models.F("response_b")), name="item_two_distinct_responses"
            ),
            models.CheckConstraint(
                condition=models.Q(risk_prior__isnull=True) | models.Q(risk_prior__gte=0, risk_prior__lte=1),
                name="item_risk_prior_0_1",
            ),
        ]
        indexes = [
            # The queue before any scoring run: a campaign's items in import order (also serves
            # the campaign foreign key). A (campaign, resolved, id) index went unused: SQLite does
            # not match Django's `NOT resolved` to it.
            models.Index(fields=["campaign", "id"], name="item_campaign_order"),
        ]

    def __str__(self):
        return self.external_id

    @property
    def responses(self) -> tuple[Response, Response]:
        return (self.response_a, self.response_b)
