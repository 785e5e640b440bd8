"""Creating campaigns and attaching rubrics: shared by commands, pages and the demo."""

import json
from pathlib import Path

from django.db import transaction

from reviews.core.exceptions import DomainError, RubricError
from reviews.models import Campaign, Rubric, RubricVersion
from reviews.rubrics.definition import parse_rubric


def load_json_file(path: str | Path):
    try:
        with open(path, "rb") as fh:
            return json.loads(fh.read().decode("utf-8"))
    except OSError as exc:
        raise DomainError(f"cannot read {path}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise DomainError(f"{path} is not valid UTF-8") from exc
    except json.JSONDecodeError as exc:
        raise DomainError(f"{path}: invalid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})") from exc


def attach_rubric(campaign: Campaign, definition: dict, *, user=None, note: str = "") -> tuple[RubricVersion, bool]:
    """Publish a rubric definition for a campaign; return (version, created).

    The definition's slug names the rubric; an identical definition reuses the latest version.
    """
    parsed = parse_rubric(definition)
    with transaction.atomic():
        rubric, _ = Rubric.objects.get_or_create(slug=parsed.slug, defaults={"title": parsed.title})
        if campaign.rubric_id not in (None, rubric.id):
            raise RubricError([f"campaign {campaign.slug!r} uses rubric {campaign.rubric.slug!r}, not {parsed.slug!r}"])
        latest = rubric.latest_published()
        if latest is not None and latest.definition == parsed.to_json():
            version, created = latest, False
        else:
            version, created = rubric.publish(definition, user=user, note=note or "imported"), True
        if campaign.rubric_id is None:
            campaign.rubric = rubric
            campaign.save(update_fields=["rubric"])
    return version, created


def create_campaign(slug: str, title: str, rubric_definition: dict | None = None, *, user=None) -> Campaign:
    """A new campaign with default settings (version 1) and, optionally, its rubric."""
    if Campaign.objects.filter(slug=slug).exists():
        raise DomainError(f"campaign {slug!r} already exists")
    with transaction.atomic():
        campaign = Campaign.objects.create(slug=slug, title=title)
        campaign.update_settings(user=user, note="created")
        if rubric_definition is not None:
            attach_rubric(campaign, rubric_definition, user=user)
    return campaign


def open_campaign(slug: str, title: str, *, rubric=None, settings: dict | None = None, user=None) -> Campaign:
    """A new campaign with an existing rubric and its initial settings (version 1), recorded as a
    SETTINGS_CHANGED event; invalid settings raise ValidationError and write nothing."""
    from reviews.models import FeedbackEvent

    if Campaign.objects.filter(slug=slug).exists():
        raise DomainError(f"A campaign with the slug {slug!r} already exists.")
    with transaction.atomic():
        campaign = Campaign.objects.create(slug=slug, title=title, rubric=rubric)
        version = campaign.update_settings(user=user, note="created", **(settings or {}))
        FeedbackEvent.record(
            campaign,
            FeedbackEvent.Action.SETTINGS_CHANGED,
            {"change": "campaign created", "title": title, "settings": version.values()},
            actor=user,
            settings_version=version,
            scoring_run=None,
        )
    return campaign
