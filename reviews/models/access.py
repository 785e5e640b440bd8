"""Who works on which campaign, and the API clients that may write to campaigns."""

from django.conf import settings
from django.db import models
from django.utils import timezone


class Membership(models.Model):
    """A user working on a campaign; labelers only ever see campaigns they are active members of.

    Rows are never deleted: leaving a campaign sets `active` to False, and every change is
    also a MEMBERSHIP_CHANGED FeedbackEvent (who, when, what).
    """

    campaign = models.ForeignKey("reviews.Campaign", on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    active = models.BooleanField(default=True)
    added_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["campaign", "user"], name="membership_unique")]
        indexes = [models.Index(fields=["user", "active"], name="membership_by_user")]

    def __str__(self):
        return f"{self.user_id} in {self.campaign_id} ({'active' if self.active else 'left'})"


class ApiToken(models.Model):
    """A per-client bearer token: only its SHA-256 is stored; the secret is shown once."""

    name = models.CharField(max_length=200)
    # The first characters of the secret, kept in clear so that admins can tell tokens apart.
    prefix = models.CharField(max_length=16)
    key_hash = models.CharField(max_length=64, unique=True)
    # The campaigns the token may act on.
    campaigns = models.ManyToManyField("reviews.Campaign", related_name="api_tokens", blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    def __str__(self):
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None
