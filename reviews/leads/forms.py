"""Forms of the leads' pages: they turn posted answers into what reviews.leads.adjudication takes."""

from dataclasses import dataclass

from django import forms

from reviews.leads.adjudication import SIDE, required_questions
from reviews.models import Item
from reviews.rubrics.definition import TIE

# A scale with more values than this is a number box instead of a row of radio buttons.
MAX_SCALE_RADIOS = 10


def field_name(slug: str, side: str) -> str:
    """The form field of a criterion (per side "a"/"b" for per-response criteria); '.' never occurs in a slug."""
    return f"f.{slug}" + (f".{side}" if side else "")


@dataclass
class LeadQuestion:
    name: str
    criterion: object
    side: str
    response_id: int | None
    bound: forms.BoundField | None = None

    @property
    def label(self) -> str:
        text = self.criterion.question or self.criterion.slug
        return f"{text} ({SIDE[self.side]})" if self.side else text

    @property
    def is_radio(self) -> bool:
        return isinstance(self.bound.field.widget, forms.RadioSelect)


def _choices(criterion, item: Item) -> list[tuple[str, str]] | None:
    if criterion.kind == "pairwise":
        choices = [(item.response_a.key, SIDE["a"]), (item.response_b.key, SIDE["b"])]
        return [*choices, (TIE, "Tie")] if criterion.allow_tie else choices
    if criterion.kind == "choice":
        return [(o.value, o.label) for o in criterion.options]
    if criterion.max - criterion.min + 1 <= MAX_SCALE_RADIOS:
        return [(str(v), str(v)) for v in range(criterion.min, criterion.max + 1)]
    return None


class AdjudicationForm(forms.Form):
    """A final answer per question (prefilled from the final answers or a clear majority), rationale, ambiguity."""

    rationale = forms.CharField(
        label="Rationale (labelers see it on their history page)",
        widget=forms.Textarea(attrs={"rows": 3}),
        max_length=5000,
        error_messages={"required": "Write a rationale: labelers see it next to the final answer."},
    )
    rubric_ambiguous = forms.BooleanField(label="The rubric is ambiguous here", required=False)
    ambiguity_note = forms.CharField(
        label="What the rubric should say (goes to the rubric's admins)",
        widget=forms.Textarea(attrs={"rows": 2}),
        required=False,
        max_length=5000,
    )

    def __init__(self, item: Item, rubric, *args, initial_answers: dict | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.item = item
        self.questions: list[LeadQuestion] = []
        initial_answers = initial_answers or {}
        for criterion, response_id, side in required_questions(item, rubric):
            name = field_name(criterion.slug, side)
            choices = _choices(criterion, item)
            label = LeadQuestion(name, criterion, side, response_id).label
            messages = {"invalid_choice": "Choose one of the answers shown."}
            # Optional: a question left blank keeps the labelers' votes (it is not adjudicated).
            if choices is None:
                field = forms.IntegerField(
                    label=label, min_value=criterion.min, max_value=criterion.max, required=False
                )
            else:
                field = forms.ChoiceField(
                    label=label, choices=choices, widget=forms.RadioSelect, error_messages=messages, required=False
                )
            field.initial = initial_answers.get((criterion.slug, response_id))
            self.fields[name] = field
            self.questions.append(LeadQuestion(name, criterion, side, response_id))
        self.order_fields([q.name for q in self.questions] + ["rationale", "rubric_ambiguous", "ambiguity_note"])
        for q in self.questions:
            q.bound = self[q.name]

    def clean(self):
        data = super().clean()
        if self.questions and not any(data.get(q.name) not in (None, "") for q in self.questions):
            self.add_error(None, "Give at least one final answer.")
        if data.get("rubric_ambiguous") and not (data.get("ambiguity_note") or "").strip():
            self.add_error("ambiguity_note", "Say where the rubric is ambiguous.")
        return data

    def answers(self) -> list[tuple[str, int | None, object]]:
        """The questions answered (blank ones are left to the labelers' votes)."""
        return [
            (q.criterion.slug, q.response_id, self.cleaned_data[q.name])
            for q in self.questions
            if self.cleaned_data.get(q.name) not in (None, "")
        ]


class DismissForm(forms.Form):
    reason = forms.CharField(
        label="Why dismiss it? (recorded with the escalation)",
        widget=forms.Textarea(attrs={"rows": 2}),
        max_length=2000,
        error_messages={"required": "Give a reason for dismissing the escalation."},
    )


class NoteForm(forms.Form):
    """A short note: reopening an escalation, or why an adjudication needs revising."""

    note = forms.CharField(
        label="Note",
        widget=forms.Textarea(attrs={"rows": 2}),
        max_length=2000,
        error_messages={"required": "Say why."},
    )


class ReviseForm(NoteForm):
    item = forms.CharField(widget=forms.HiddenInput, max_length=255)
