"""Campaign figures for `campaign_status` and the pages: counts and final answers."""

from collections import defaultdict

from reviews.models import Answer, Escalation, FinalAnswer, Item, ItemScore, Judgment, LabelKind, Prompt, Response

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


def campaign_status(campaign) -> dict:
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
        "final_answers": final_answer_counts(campaign),
    }
