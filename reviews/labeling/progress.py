"""What labelers see of their own work: the progress strip and their history.

Blind by construction: a labeler sees only their own judgments, and final answers only for
items they judged that are resolved. A per-response final answer is withheld while the same
response still waits in an unresolved item the labeler has not judged (responses are shared
between items, so it would be another labeler's answer to a question still ahead of them).
"""

from dataclasses import dataclass, field

from django.db import connection
from django.db.models import Q
from django.utils import timezone

from reviews.models import Adjudication, Annotator, Campaign, FinalAnswer, Item, Judgment, LabelKind, Source
from reviews.rubrics.definition import TIE

SIDE_LABELS = {"left": "Response A", "right": "Response B"}


@dataclass
class Progress:
    judged_today: int
    budget_left: int | None  # None: no cap
    daily_left: int | None  # None: no daily cap
    gold_accuracy: float | None  # None: no gold item judged (with gold answers)
    gold_compared: int


def midnight():
    """The start of today (the daily budget's day)."""
    return timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)


# Both run on every page of the labelers' queue: plain SQL, cheaper to send than to build.
SPENT_SQL = (
    "SELECT COUNT(*), COALESCE(SUM(CASE WHEN j.created_at >= %s THEN 1 ELSE 0 END), 0) FROM reviews_judgment j "
    "JOIN reviews_item i ON i.id = j.item_id WHERE i.campaign_id = %s AND j.kind = %s AND j.source = %s"
)
MINE_SQL = (
    "SELECT COALESCE(SUM(CASE WHEN j.source = %s AND j.created_at >= %s THEN 1 ELSE 0 END), 0), "
    "COALESCE(SUM(CASE WHEN i.is_gold THEN 1 ELSE 0 END), 0) FROM reviews_judgment j "
    "JOIN reviews_item i ON i.id = j.item_id WHERE i.campaign_id = %s AND j.annotator_id = %s"
)


def budget_spent(campaign: Campaign) -> tuple[int, int]:
    """(human judgments made in the app for the campaign, of them today): what its budget counts."""
    since = connection.ops.adapt_datetimefield_value(midnight())
    with connection.cursor() as cursor:
        cursor.execute(SPENT_SQL, [since, campaign.id, LabelKind.HUMAN, Source.APP])
        total, today = cursor.fetchone()
    return total, today


def progress_for(
    campaign: Campaign, user, *, annotator_id: int | None = None, spent: tuple[int, int] | None = None
) -> Progress:
    """The labeler's judgments today, the campaign's budget left and the labeler's gold accuracy
    (`spent`: budget_spent's figures when the caller has them already)."""
    if annotator_id is None:
        annotator_id = Annotator.objects.filter(user=user).values_list("id", flat=True).first()
    since = connection.ops.adapt_datetimefield_value(midnight())
    with connection.cursor() as cursor:
        cursor.execute(MINE_SQL, [Source.APP, since, campaign.id, annotator_id])
        today, gold = cursor.fetchone()
    s = campaign.settings
    budget_left = daily_left = None
    if s.budget_total is not None or s.budget_daily is not None:
        total, today = spent if spent is not None else budget_spent(campaign)
        if s.budget_total is not None:
            budget_left = max(0, s.budget_total - total)
        if s.budget_daily is not None:
            daily_left = max(0, s.budget_daily - today)
    # Most labelers have judged no gold item: then there is no accuracy to compute.
    accuracy, compared = gold_accuracy(campaign, user) if gold else (None, 0)
    return Progress(today, budget_left, daily_left, accuracy, compared)


def gold_answer_map(item: Item) -> dict[tuple[str, str | None], str]:
    """An item's gold answers as {(criterion, response key or None): value}.

    Accepts {"criterion": value} with {"response key": value} for per-response criteria, or a
    list of labels in the import format ({"criterion", "response"?, "value"}).
    """
    raw = item.gold_answers
    out: dict[tuple[str, str | None], str] = {}
    if isinstance(raw, dict):
        for criterion, value in raw.items():
            if isinstance(value, dict):
                out.update({(criterion, str(key)): str(v) for key, v in value.items()})
            else:
                out[(criterion, None)] = str(value)
    elif isinstance(raw, list):
        for label in raw:
            if isinstance(label, dict) and "criterion" in label and "value" in label:
                response = label.get("response")
                out[(label["criterion"], None if response is None else str(response))] = str(label["value"])
    return out


def gold_accuracy(campaign: Campaign, user) -> tuple[float | None, int]:
    """(share of the labeler's answers on gold items that match the gold answers, answers compared)."""
    judgments = (
        Judgment.objects.filter(
            annotator__user=user, item__campaign=campaign, item__is_gold=True, item__gold_answers__isnull=False
        )
        .select_related("item__response_a", "item__response_b")
        .prefetch_related("answers")
    )
    compared = matched = 0
    for judgment in judgments:
        n, right = _against_gold(judgment)
        compared += n
        matched += right
    return (matched / compared if compared else None), compared


def _against_gold(judgment: Judgment) -> tuple[int, int]:
    """(answers that have a gold answer, of them equal to it) for a judgment of a gold item
    (with item, its responses and answers loaded)."""
    item = judgment.item
    gold = gold_answer_map(item)
    keys = {item.response_a_id: item.response_a.key, item.response_b_id: item.response_b.key}
    compared = matched = 0
    for answer in judgment.answers.all():
        expected = gold.get((answer.criterion, keys.get(answer.response_id)))
        if expected is not None:
            compared += 1
            matched += answer.value == expected
    return compared, matched


@dataclass
class GoldAlert:
    campaign: Campaign
    username: str
    accuracy: float
    compared: int


def gold_alerts(campaign: Campaign | None = None) -> list[GoldAlert]:
    """Labelers whose accuracy on gold items (per campaign) is below settings.GOLD_ALERT_ACCURACY,
    once they gave at least GOLD_ALERT_MIN_ANSWERS gold answers; worst first (DESIGN.md "Gold items")."""
    from django.conf import settings

    judgments = Judgment.objects.filter(
        kind=LabelKind.HUMAN, annotator__user__isnull=False, item__is_gold=True, item__gold_answers__isnull=False
    )
    if campaign is not None:
        judgments = judgments.filter(item__campaign=campaign)
    judgments = judgments.select_related(
        "annotator__user", "item__campaign", "item__response_a", "item__response_b"
    ).prefetch_related("answers")
    tally: dict[tuple[int, str], list] = {}
    for judgment in judgments:
        item = judgment.item
        row = tally.setdefault((item.campaign_id, judgment.annotator.user.get_username()), [item.campaign, 0, 0])
        compared, matched = _against_gold(judgment)
        row[1] += compared
        row[2] += matched
    alerts = [
        GoldAlert(c, username, matched / compared, compared)
        for (_, username), (c, compared, matched) in tally.items()
        if compared >= settings.GOLD_ALERT_MIN_ANSWERS and matched / compared < settings.GOLD_ALERT_ACCURACY
    ]
    return sorted(alerts, key=lambda a: (a.accuracy, a.campaign.slug, a.username))


def own_judgments(user):
    """The labeler's own judgments, newest first, with what the history page shows."""
    return (
        Judgment.objects.filter(annotator__user=user)
        .select_related(
            "item__prompt",
            "item__campaign",
            "item__response_a",
            "item__response_b",
            "left_response",
            "rubric_version",
        )
        .prefetch_related("answers")
        .order_by("-created_at", "-id")
    )


@dataclass
class HistoryAnswer:
    question: str
    side: str  # "", "Response A" or "Response B"
    yours: str
    final: str | None = None
    withheld: bool = False

    @property
    def agrees(self) -> bool | None:
        return None if self.final is None else self.final == self.yours


@dataclass
class HistoryRow:
    judgment: Judgment
    resolved: bool
    answers: list[HistoryAnswer] = field(default_factory=list)
    lead_rationale: str = ""
    adjudicated: bool = False

    @property
    def confidence(self) -> int | None:
        c = self.judgment.confidence
        return None if c is None else round(c * 4 + 1)

    @property
    def any_withheld(self) -> bool:
        return any(a.withheld for a in self.answers)


def _display(criterion, value: str | None, left_key: str) -> str:
    if value is None:
        return "—"
    if criterion is None:
        return value
    if criterion.kind == "pairwise":
        if value == TIE:
            return "Tie"
        return SIDE_LABELS["left"] if value == left_key else SIDE_LABELS["right"]
    if criterion.kind == "choice":
        return next((o.label for o in criterion.options if o.value == value), value)
    return value


def history_rows(user, judgments) -> list[HistoryRow]:
    """Decorate one page of own_judgments() with the final answers and the lead's rationale."""
    judgments = list(judgments)
    items = {j.item_id: j.item for j in judgments}
    resolved_ids = [i.id for i in items.values() if i.resolved]
    response_ids = {r for i in items.values() if i.resolved for r in (i.response_a_id, i.response_b_id)}
    final_item: dict[tuple[int, str], str] = {}
    final_response: dict[tuple[int, int, str], str] = {}
    rationale: dict[int, Adjudication] = {}
    withheld: set[int] = set()
    if resolved_ids:
        for fa in FinalAnswer.objects.filter(item_id__in=resolved_ids):
            final_item[(fa.item_id, fa.criterion)] = fa.value
        for fa in FinalAnswer.objects.filter(response_id__in=response_ids):
            final_response[(fa.campaign_id, fa.response_id, fa.criterion)] = fa.value
        pending = (
            Item.objects.filter(Q(response_a_id__in=response_ids) | Q(response_b_id__in=response_ids), resolved=False)
            .exclude(judgments__annotator__user=user)
            .values_list("response_a_id", "response_b_id")
        )
        withheld = {r for pair in pending for r in pair} & response_ids
        # In-app and imported adjudications alike; a per-response one made on another item that
        # shows the same response decided this item's answer too.
        adjudications = (
            Adjudication.objects.filter(Q(item_id__in=resolved_ids) | Q(answers__response_id__in=response_ids))
            .distinct()
            .prefetch_related("answers")
            .order_by("created_at", "id")
        )
        for adjudication in adjudications:
            touched = {a.response_id for a in adjudication.answers.all()}
            for item in items.values():
                if item.resolved and (
                    item.id == adjudication.item_id or touched & {item.response_a_id, item.response_b_id}
                ):
                    rationale[item.id] = adjudication  # the latest wins
    rows = []
    for j in judgments:
        item = j.item
        left = j.left_response or item.response_a
        right_id = item.response_b_id if left.pk == item.response_a_id else item.response_a_id
        sides = {left.pk: "left", right_id: "right"}
        rubric = j.rubric_version.parsed
        row = HistoryRow(j, item.resolved)
        for answer in sorted(
            j.answers.all(), key=lambda a: (_criterion_index(rubric, a.criterion), sides.get(a.response_id, ""))
        ):
            criterion = rubric.criterion(answer.criterion)
            side = sides.get(answer.response_id)
            entry = HistoryAnswer(
                question=criterion.question if criterion and criterion.question else answer.criterion,
                side=SIDE_LABELS.get(side, ""),
                yours=_display(criterion, answer.value, left.key),
            )
            if item.resolved:
                if answer.response_id is None:
                    final = final_item.get((item.id, answer.criterion))
                elif answer.response_id in withheld:
                    final, entry.withheld = None, True
                else:
                    final = final_response.get((item.campaign_id, answer.response_id, answer.criterion))
                entry.final = None if final is None else _display(criterion, final, left.key)
            row.answers.append(entry)
        if item.id in rationale:
            row.adjudicated = True
            row.lead_rationale = rationale[item.id].rationale
        rows.append(row)
    return rows


def _criterion_index(rubric, slug: str) -> int:
    return next((n for n, c in enumerate(rubric.criteria) if c.slug == slug), len(rubric.criteria))
