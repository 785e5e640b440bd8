"""Campaign figures for `campaign_status` and the pages: counts and final answers."""

from collections import defaultdict

from django.db.models import Count, IntegerField, OuterRef, Subquery
from django.db.models.functions import Coalesce

from reviews.models import (
    Answer,
    CampaignSettings,
    Escalation,
    FinalAnswer,
    Item,
    ItemScore,
    Judgment,
    LabelKind,
    Membership,
    Prompt,
    Response,
    RubricVersion,
    ScoringRun,
    Source,
)

ALL_TAGS = "*"


def response_tags(campaign) -> dict[int, set[str]]:
    """Every tag of the items that show each response."""
    tags: dict[int, set[str]] = defaultdict(set)
    for a, b, item_tags in Item.objects.filter(campaign=campaign).values_list("response_a_id", "response_b_id", "tags"):
        tags[a].update(item_tags)
        tags[b].update(item_tags)
    return tags


def final_answer_counts(campaign) -> dict:
    """{criterion: {model: {tag: {value: count}}}} over per-response final answers.

    Each response counts once under every tag of the items that show it, and under "*".
    """
    tags = response_tags(campaign)
    counts: dict = {}
    rows = FinalAnswer.objects.filter(campaign=campaign, response__isnull=False).values_list(
        "criterion", "response_id", "response__model", "value"
    )
    for criterion, response_id, model, value in rows:
        by_tag = counts.setdefault(criterion, {}).setdefault(model, {})
        for tag in (ALL_TAGS, *sorted(tags.get(response_id, ()))):
            by_value = by_tag.setdefault(tag, {})
            by_value[value] = by_value.get(value, 0) + 1
    return counts


def campaign_status(campaign, *, with_final_answers: bool = True) -> dict:
    """Counts and final answers of a campaign, as `campaign_status --json` prints them."""
    last_run = campaign.scoring_runs.order_by("-requested_at", "-id").first()
    human = Judgment.objects.filter(item__campaign=campaign, kind=LabelKind.HUMAN)
    return {
        "campaign": campaign.slug,
        "title": campaign.title,
        "rubric": None
        if campaign.rubric_id is None
        else {"slug": campaign.rubric.slug, "version": getattr(campaign.rubric_version(), "number", None)},
        "settings_version": campaign.settings.number,
        "items": Item.objects.filter(campaign=campaign).count(),
        "prompts": Prompt.objects.filter(campaign=campaign).count(),
        "responses": Response.objects.filter(prompt__campaign=campaign).count(),
        "resolved_items": Item.objects.filter(campaign=campaign, resolved=True).count(),
        "human_judgments": human.count(),
        "human_labels": Answer.objects.filter(judgment__in=human).count(),
        "model_labels": Answer.objects.filter(
            judgment__item__campaign=campaign, judgment__kind=LabelKind.MODEL
        ).count(),
        "adjudicated_responses": Answer.objects.filter(adjudication__item__campaign=campaign, response__isnull=False)
        .values("response_id")
        .distinct()
        .count(),
        "adjudicated_items": Item.objects.filter(campaign=campaign, adjudicated=True).count(),
        "open_escalations": Escalation.objects.filter(
            campaign=campaign, status__in=[Escalation.Status.OPEN, Escalation.Status.IN_REVIEW]
        ).count(),
        "scored_items": ItemScore.objects.filter(run_id=campaign.scoring_run_id).count()
        if campaign.scoring_run_id
        else 0,
        "last_scoring_run": None
        if last_run is None
        else {
            "id": last_run.id,
            "status": last_run.status,
            "items": last_run.item_count,
            "finished_at": last_run.finished_at.isoformat() if last_run.finished_at else None,
        },
        "final_answers": final_answer_counts(campaign) if with_final_answers else {},
    }


def _count_per_campaign(queryset, campaign_field: str = "campaign"):
    """A correlated COUNT per campaign row, 0 when there are none."""
    counted = (
        queryset.filter(**{campaign_field: OuterRef("pk")})
        .order_by()
        .values(campaign_field)
        .annotate(n=Count("*"))
        .values("n")
    )
    return Coalesce(Subquery(counted, output_field=IntegerField()), 0)


def campaigns_overview(user):
    """The campaigns the user may see with their headline counts, in one query however many
    campaigns and items (labelers see only campaigns they are members of).

    Each figure is a correlated subquery on an index that starts with the campaign, so the
    page costs one query; `your_judgments` counts the given user's own judgments. Budget burn
    is the campaign's in-app human judgments over its total budget (`budget_total`, None = no cap).
    """
    from reviews.access import visible_campaigns

    runs = ScoringRun.objects.filter(campaign=OuterRef("pk")).order_by("-requested_at", "-id")
    rubric_versions = RubricVersion.objects.filter(rubric=OuterRef("rubric_id"), published_at__isnull=False)
    settings_versions = CampaignSettings.objects.filter(campaign=OuterRef("pk"))
    own = Judgment.objects.filter(annotator__user=user)
    open_statuses = [Escalation.Status.OPEN, Escalation.Status.IN_REVIEW]
    latest_settings = settings_versions.order_by("-number")
    return (
        visible_campaigns(user)
        .select_related("rubric")
        .annotate(
            app_judgment_count=_count_per_campaign(
                Judgment.objects.filter(kind=LabelKind.HUMAN, source=Source.APP), "item__campaign"
            ),
            budget_total=Subquery(latest_settings.values("budget_total")[:1]),
            member_count=_count_per_campaign(Membership.objects.filter(active=True)),
            item_count=_count_per_campaign(Item.objects.all()),
            prompt_count=_count_per_campaign(Prompt.objects.all()),
            resolved_count=_count_per_campaign(Item.objects.filter(resolved=True)),
            human_judgment_count=_count_per_campaign(Judgment.objects.filter(kind=LabelKind.HUMAN), "item__campaign"),
            your_judgments=_count_per_campaign(own, "item__campaign"),
            open_escalation_count=_count_per_campaign(Escalation.objects.filter(status__in=open_statuses)),
            rubric_version_number=Subquery(rubric_versions.order_by("-number").values("number")[:1]),
            settings_version_number=Subquery(settings_versions.order_by("-number").values("number")[:1]),
            last_run_id=Subquery(runs.values("id")[:1]),
            last_run_status=Subquery(runs.values("status")[:1]),
            last_run_finished_at=Subquery(runs.values("finished_at")[:1]),
        )
        .order_by("-created_at", "slug")
    )


def _value_order(value: str):
    """Scale answers (integers as text) in numeric order, before any other values."""
    try:
        return (0, int(value), "")
    except ValueError:
        return (1, 0, value)


def _cell(count: int, total: int) -> dict:
    share = count / total if total else 0.0
    return {"count": count, "share": share, "percent": round(100 * share, 1)}


def final_answer_tables(final_answers: dict) -> list[dict]:
    """`final_answer_counts` as one table per criterion: a row per model and tag ("*" first), cells count and share."""
    tables = []
    for criterion, by_model in sorted(final_answers.items()):
        values = sorted(
            {value for by_tag in by_model.values() for counts in by_tag.values() for value in counts}, key=_value_order
        )
        rows = []
        for model, by_tag in sorted(by_model.items()):
            for tag in sorted(by_tag, key=lambda t: (t != ALL_TAGS, t)):
                counts = by_tag[tag]
                total = sum(counts.values())
                cells = [_cell(counts.get(value, 0), total) for value in values]
                rows.append({"model": model, "tag": tag, "total": total, "cells": cells})
        tables.append({"criterion": criterion, "values": values, "rows": rows})
    return tables
