"""Shared helpers for the project's management commands."""

from django.core.management.base import CommandError

from reviews.models import Campaign


def get_campaign(slug: str) -> Campaign:
    try:
        return Campaign.objects.select_related("rubric").get(slug=slug)
    except Campaign.DoesNotExist:
        raise CommandError(f"no campaign {slug!r} (create it with create_campaign)") from None
