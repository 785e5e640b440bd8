"""Adjudication: a lead's final answers per criterion, rationale and "the rubric is ambiguous" note.

An adjudication decides the item's final answers (DESIGN.md "Final answers"): it is stored as
an `Adjudication` with its `Answer` rows, and reviews.leads.final_answers recomputes the final
answers and item flags. A revision is a new adjudication; earlier ones stay as history.
This module also gathers what the adjudication page shows (`review_sheet`).
"""

from collections import Counter
from dataclasses import dataclass, field

from django.db import transaction
from django.db.models import Q

from reviews.core.exceptions import ClaimConflict, DomainError
from reviews.core.roles import is_lead
from reviews.leads import escalation as esc
from reviews.leads import final_answers, policy
from reviews.models import (
    Adjudication,
    Annotator,
    Answer,
    Escalation,
    FeedbackEvent,
    FinalAnswer,
    Item,
    ItemScore,
    Judgment,
    LabelKind,
    Source,
)
from reviews.rubrics.definition import TIE

SIDE = {"a": "Response A", "b": "Response B"}


class AdjudicationError(DomainError):
    """The adjudication is incomplete or invalid; `errors` lists every problem."""

    def __init__(self, errors: list[str]):
        self.errors = errors
        super().__init__(" ".join(errors))


def required_questions(item: Item, rubric) -> list[tuple]:
    """(criterion, response id or None, side "a"/"b"/"") for every question an adjudication answers."""
    out = []
    for c in rubric.criteria:
        if c.per_response:
            out += [(c, item.response_a_id, "a"), (c, item.response_b_id, "b")]
        else:
            out.append((c, None, ""))
    return out


def _validate(item: Item, rubric, answers, rationale: str, rubric_ambiguous: bool, note: str) -> list:
    errors, clean = [], []
    given = {(criterion, response_id): value for criterion, response_id, value in answers}
    keys = (item.response_a.key, item.response_b.key)
    known = set()
    for c, response_id, side in required_questions(item, rubric):
        known.add((c.slug, response_id))
        where = f"“{c.question or c.slug}”" + (f" ({SIDE[side]})" if side else "")
        value = given.get((c.slug, response_id))
        if value in (None, ""):
            continue  # left to the labelers' votes
        if c.kind == "scale":
            try:
                value = int(value)
            except (TypeError, ValueError):
                errors.append(f"{where}: expected a whole number.")
                continue
        try:
            clean.append((c.slug, response_id, c.check_value(value, keys)))
        except ValueError as exc:
            errors.append(f"{where}: {exc}.")
    if not clean and not errors:
        errors.append("Give at least one final answer.")
    unknown = sorted(str(k[0]) for k in given if k not in known)
    if unknown:
        errors.append(f"Not questions of this rubric: {', '.join(unknown)}.")
    if not rationale.strip():
        errors.append("Write a rationale: labelers see it next to the final answer.")
    if rubric_ambiguous and not note.strip():
        errors.append("Say where the rubric is ambiguous: the note goes to the rubric's admins.")
    return errors, clean


def adjudicate(
    item: Item,
    user,
    answers: list[tuple[str, int | None, object]],
    *,
    rationale: str,
    rubric_ambiguous: bool = False,
    ambiguity_note: str = "",
    escalation: Escalation | None = None,
) -> Adjudication:
    """Record a lead's final answers (criterion, response id or None, value); questions left out keep
    the labelers' votes (DESIGN.md "Final answers": adjudicated per criterion).

    With an escalation (claimed by this lead) it resolves it. Raises AdjudicationError with
    every problem, or an EscalationError from the state machine; either way nothing is written.
    """
    campaign = item.campaign
    version = campaign.rubric_version()
    if version is None:
        raise AdjudicationError(["This campaign has no published rubric to adjudicate against."])
    if not is_lead(user):
        raise AdjudicationError(["Only leads can adjudicate."])
    if escalation is not None and escalation.item_id != item.id:
        raise AdjudicationError(["That escalation belongs to another item."])
    errors, clean = _validate(item, version.parsed, answers, rationale, rubric_ambiguous, ambiguity_note)
    if errors:
        raise AdjudicationError(errors)
    note = ambiguity_note.strip() if rubric_ambiguous else ""
    with transaction.atomic():
        adjudication = Adjudication.objects.create(
            item=item,
            lead=Annotator.for_user(user),
            source=Source.APP,
            escalation=escalation,
            rationale=rationale.strip(),
            rubric_ambiguous=rubric_ambiguous,
            ambiguity_note=note,
            rubric_version=version,
            settings_version=campaign.settings,
        )
        Answer.objects.bulk_create(
            Answer(adjudication=adjudication, criterion=c, response_id=r, value=v) for c, r, v in clean
        )
        final_answers.refresh(campaign, [item.id])
        feedback = {
            "adjudication": adjudication.id,
            "answers": [[c, r, v] for c, r, v in clean],
            "rationale": adjudication.rationale,
            "rubric_ambiguous": rubric_ambiguous,
            "ambiguity_note": note,
            "revision_of": _previous_id(item, adjudication),
        }
        if escalation is not None:
            escalation.transition(Escalation.Status.RESOLVED, user=user, note=adjudication.rationale, feedback=feedback)
        else:
            FeedbackEvent.record(
                campaign,
                FeedbackEvent.Action.ADJUDICATED,
                feedback,
                actor=user,
                item=item,
                annotator=adjudication.lead,
                rubric_version=version,
            )
    return adjudication


def _previous_id(item: Item, current: Adjudication) -> int | None:
    previous = item.adjudications.exclude(pk=current.pk).order_by("-created_at", "-id").first()
    return previous.id if previous else None


def revise(item: Item, user, note: str) -> Escalation:
    """Open (or join) an escalation of an adjudicated item so a lead can adjudicate it again, and claim it.

    The earlier adjudications stay: the revision is a new one, made on the adjudication page.
    """
    if not note.strip():
        raise AdjudicationError(["Say why the adjudication needs revising."])
    escalation, _ = esc.open_escalation(
        item,
        reason=Escalation.Reason.OTHER,
        rules=[{"rule": policy.REVISION, "value": note.strip(), "threshold": None}],
        user=user,
        comment=note.strip(),
        trigger="revision",
    )
    if escalation.status == Escalation.Status.OPEN:
        escalation = esc.claim(escalation, user)
    elif escalation.claimed_by_id != user.id:
        raise ClaimConflict(escalation.held_message())
    return escalation


def ambiguity_notes(rubric=None, *, open_only: bool = False):
    """Adjudications that flagged their rubric as ambiguous, newest first (for the rubric pages)."""
    rows = Adjudication.objects.filter(rubric_ambiguous=True).select_related(
        "item__campaign", "lead", "rubric_version", "ambiguity_addressed_by"
    )
    if rubric is not None:
        rows = rows.filter(rubric_version__rubric=rubric)
    if open_only:
        rows = rows.filter(ambiguity_addressed_by__isnull=True)
    return rows.order_by("-created_at", "-id")


def campaign_adjudications(campaign):
    """Every adjudication of a campaign, in-app and imported, newest first."""
    return (
        Adjudication.objects.filter(item__campaign=campaign)
        .select_related("item__prompt", "lead", "escalation")
        .prefetch_related("answers")
        .order_by("-created_at", "-id")
    )


# -- what the adjudication page shows -------------------------------------------------------


def display_value(criterion, value: str | None, item: Item) -> str:
    """An answer as a lead reads it: responses as A / B (A is the item's first response)."""
    if value is None:
        return "—"
    if criterion is None:
        return str(value)
    if criterion.kind == "pairwise":
        if value == TIE:
            return "Tie"
        return {item.response_a.key: SIDE["a"], item.response_b.key: SIDE["b"]}.get(value, value)
    if criterion.kind == "choice":
        return next((o.label for o in criterion.options if o.value == value), value)
    return str(value)


@dataclass
class Column:
    """One judgment, shown side by side with the others."""

    judgment: Judgment
    automated: bool
    shown_left: str
    confidence: float | None
    other_item: str = ""
    cells: dict = field(default_factory=dict)

    @property
    def time_spent(self) -> str:
        ms = self.judgment.time_spent_ms
        return "—" if ms is None else f"{ms / 1000:.0f} s" if ms < 120_000 else f"{ms / 60000:.1f} min"


@dataclass
class Row:
    key: tuple
    criterion: object
    side: str
    cells: list
    votes: str
    final: str
    basis: str


@dataclass
class Sheet:
    columns: list
    rows: list
    score: ItemScore | None
    why: list
    run_id: int | None
    initial: dict
    history: list


def _columns(item: Item, rubric) -> list[Column]:
    related = Judgment.objects.select_related("annotator", "left_response", "item").prefetch_related("answers")
    own = list(related.filter(item=item).order_by("kind", "created_at", "id"))
    # Per-response answers given on other items that show the same responses (they vote on them too).
    other_ids = set(
        Answer.objects.filter(response_id__in=[item.response_a_id, item.response_b_id], judgment__isnull=False)
        .exclude(judgment__item=item)
        .values_list("judgment_id", flat=True)
    )
    others = list(related.filter(id__in=other_ids).order_by("kind", "created_at", "id"))
    columns = []
    for j in own + others:
        on_other = j.item_id != item.id
        if j.left_response_id is None or on_other:
            shown_left = "—"
        else:
            shown_left = SIDE["a"] if j.left_response_id == item.response_a_id else SIDE["b"]
        column = Column(
            judgment=j,
            automated=j.kind == LabelKind.MODEL,
            shown_left=shown_left,
            confidence=None if j.confidence is None else round(policy.confidence_on_scale(j.confidence), 1),
            other_item=j.item.external_id if on_other else "",
        )
        for answer in j.answers.all():
            if on_other and answer.response_id not in (item.response_a_id, item.response_b_id):
                continue
            column.cells[(answer.criterion, answer.response_id)] = answer.value
        columns.append(column)
    return columns


def review_sheet(item: Item) -> Sheet:
    """Every judgment side by side, the final answers, the scores and "why this item", and past adjudications."""
    rubric = item.campaign.rubric_version().parsed
    columns = _columns(item, rubric)
    finals = {
        (fa.criterion, fa.response_id): fa
        for fa in FinalAnswer.objects.filter(Q(item=item) | Q(response_id__in=[item.response_a_id, item.response_b_id]))
    }
    rows, initial = [], {}
    for c, response_id, side in required_questions(item, rubric):
        key = (c.slug, response_id)
        values = [col.cells.get(key) for col in columns]
        human = Counter(v for v, col in zip(values, columns, strict=True) if v is not None and not col.automated)
        fa = finals.get(key)
        rows.append(
            Row(
                key=key,
                criterion=c,
                side=SIDE.get(side, ""),
                cells=[display_value(c, v, item) if v is not None else "" for v in values],
                votes=", ".join(f"{display_value(c, v, item)} ×{n}" for v, n in human.most_common()),
                final=display_value(c, fa.value, item) if fa else "",
                basis=fa.get_basis_display() if fa else "",
            )
        )
        if fa is not None:
            initial[key] = fa.value
        elif human and (len(human) == 1 or human.most_common(2)[0][1] > human.most_common(2)[1][1]):
            initial[key] = human.most_common(1)[0][0]
    run = item.campaign.scoring_run
    score = ItemScore.objects.filter(run=run, item=item).first() if run else None
    return Sheet(columns, rows, score, why_this_item(item, score, run), run.id if run else None, initial, history(item))


def why_this_item(item: Item, score: ItemScore | None, run) -> list[str]:
    """The score decomposition λ·r, λ·h, λ·d (or audit / gold) of DESIGN.md "Why this item"."""
    if item.is_gold:
        return ["Gold item: mixed into the queue to measure labelers' accuracy."]
    if score is None:
        return ["No scoring run has scored this item yet: it was served in import order."]
    if score.audit:
        return [f"Audit sample: drawn uniformly at random (selection probability {score.selection_probability:.3f})."]
    w = run.weights or {}
    parts = [
        f"λ_risk·r = {w.get('risk', 1.0):g} × {score.risk:.3f} = {w.get('risk', 1.0) * score.risk:.3f}",
        f"λ_unc·h = {w.get('uncertainty', 1.0):g} × {score.uncertainty:.3f} = "
        f"{w.get('uncertainty', 1.0) * score.uncertainty:.3f}",
        f"λ_div·d = {w.get('diversity', 1.0):g} × {score.diversity:.3f} = "
        f"{w.get('diversity', 1.0) * score.diversity:.3f}",
        f"u = {score.utility:.3f}" + (f", rank {score.rank + 1} in the active set" if score.rank is not None else ""),
    ]
    return parts


@dataclass
class HistoryEntry:
    adjudication: Adjudication
    answers: list


def history(item: Item) -> list[HistoryEntry]:
    """The item's adjudications, newest first, in-app and imported, with their answers."""
    rubric = item.campaign.rubric_version().parsed
    entries = []
    side = {item.response_a_id: SIDE["a"], item.response_b_id: SIDE["b"]}
    adjudications = (
        Adjudication.objects.filter(Q(item=item) | Q(answers__response_id__in=[item.response_a_id, item.response_b_id]))
        .distinct()
        .select_related("lead", "escalation")
        .prefetch_related("answers")
        .order_by("-created_at", "-id")
    )
    for adjudication in adjudications:
        answers = []
        for a in adjudication.answers.all():
            c = rubric.criterion(a.criterion)
            question = (c.question if c and c.question else a.criterion) + (
                f" ({side[a.response_id]})" if a.response_id in side else ""
            )
            answers.append((question, display_value(c, a.value, item)))
        entries.append(HistoryEntry(adjudication, answers))
    return entries
