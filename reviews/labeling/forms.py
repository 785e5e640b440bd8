"""Forms of the labelers' pages (and the gold page, which asks the same questions): they turn
posted answers into the values reviews.labeling.queue and reviews.labeling.gold take.

The compare page shows the responses as "Response A" (left) and "Response B" (right) and
never their keys, so the form speaks in sides ("left", "right", "tie") and maps them to
response keys and ids through the assignment's recorded left response.
"""

from dataclasses import dataclass

from django import forms
from django.forms.boundfield import BoundWidget
from django.template.loader import render_to_string
from django.utils.functional import cached_property
from django.utils.safestring import SafeString

from reviews.models import Assignment, Escalation, Item, RubricVersion
from reviews.rubrics.definition import TIE, Criterion

SIDES = ("left", "right")
SIDE_LABELS = {"left": "Response A", "right": "Response B"}
# A scale with more values than this is a number box instead of a row of radio buttons.
MAX_SCALE_RADIOS = 10
# time_spent_ms is stored in a PositiveIntegerField.
MAX_TIME_SPENT_MS = 2**31 - 1

# Keyboard shortcuts (compare.js reads them from data-key attributes). Reserved keys: 1, 2 and T
# answer the first pairwise question, E escalates, S skips, C sets the confidence, R goes to the
# rationale, ? shows the shortcuts. Every other question gets a letter: press it, then the
# option's number. Response A's questions take letters from the left half of the keyboard,
# Response B's from the right half.
KEYS_FOR = {
    "left": "adfgqwzx",
    "right": "jklhuiop",
    None: "nmbvy",
}
PAIRWISE_KEYS = {"left": "1", "right": "2", "tie": "t"}
CONFIDENCE_KEY = "c"
RATIONALE_KEY = "r"


def field_name(criterion: Criterion, side: str | None = None) -> str:
    """The form field of a criterion (per side for per-response criteria); '.' never occurs in a slug."""
    return f"q.{criterion.slug}" + (f".{side}" if side else "")


class TimeSpentField(forms.IntegerField):
    """Milliseconds on the page, counted by compare.js; optional."""

    def __init__(self):
        super().__init__(
            required=False,
            min_value=0,
            max_value=MAX_TIME_SPENT_MS,
            widget=forms.HiddenInput(attrs={"data-time-spent": ""}),
            error_messages={
                "invalid": "Time spent must be a whole number of milliseconds.",
                "min_value": "Time spent cannot be negative.",
                "max_value": "Time spent is implausibly long.",
            },
        )


@dataclass
class RadioOption:
    radio: BoundWidget
    digit: str
    show_digit: bool


@dataclass
class Question:
    """One question on the page: a criterion, for one side or for the pair."""

    criterion: Criterion
    side: str | None
    name: str
    key: str | None
    bound: forms.BoundField | None = None

    @property
    def side_label(self) -> str:
        return SIDE_LABELS.get(self.side, "")

    @property
    def is_radio(self) -> bool:
        return self.bound.widget_type == "radioselect"

    @cached_property
    def options(self) -> list[RadioOption]:
        """The radio buttons with the digit that picks each (after the question's key)."""
        if not self.is_radio:
            return []
        scale_digits = self.criterion.kind == "scale" and self.criterion.min >= 0 and self.criterion.max <= 10
        out = []
        for n, radio in enumerate(self.bound, start=1):
            value = str(radio.data["value"])
            if self.criterion.kind == "pairwise" and self.key is None:
                digit = PAIRWISE_KEYS[value].upper()
            elif scale_digits:
                digit = str(int(value) % 10)  # a scale's digit is its value (10 is 0)
            else:
                digit = str(n % 10) if n <= 10 else ""
            out.append(RadioOption(radio, digit, show_digit=digit != str(radio.choice_label)))
        return out

    @property
    def key_range(self) -> str:
        digits = [o.digit for o in self.options if o.digit]
        return f"{digits[0]}–{digits[-1]}" if digits else ""


class JudgmentForm(forms.Form):
    """The rubric's criteria for one assignment; every criterion is required."""

    confidence = forms.TypedChoiceField(
        label="Confidence",
        choices=[("", "Not given"), *((str(n), str(n)) for n in range(1, 6))],
        coerce=int,
        empty_value=None,
        required=False,
        widget=forms.RadioSelect,
        error_messages={"invalid_choice": "Confidence is 1 to 5, or not given."},
    )
    rationale = forms.CharField(
        label="Rationale (optional)",
        required=False,
        max_length=5000,
        widget=forms.Textarea(attrs={"rows": 3, "data-key": RATIONALE_KEY}),
    )
    time_spent_ms = TimeSpentField()

    def __init__(self, assignment: Assignment, *args, **kwargs):
        kwargs.setdefault("initial", {"confidence": ""})
        super().__init__(*args, **kwargs)
        self.assignment = assignment
        item = assignment.item
        self.rubric = assignment.rubric_version.parsed
        left = assignment.left_response
        right = item.response_b if left.pk == item.response_a_id else item.response_a
        self.responses = {"left": left, "right": right}
        self.questions: list[Question] = []
        free_keys = {side: list(keys) for side, keys in KEYS_FOR.items()}
        first_pairwise = True
        for criterion in self.rubric.criteria:
            sides = SIDES if criterion.per_response else (None,)
            for side in sides:
                if criterion.kind == "pairwise" and first_pairwise:
                    key = None  # answered with 1 / 2 / T
                    first_pairwise = False
                else:
                    key = free_keys[side].pop(0) if free_keys[side] else None
                name = field_name(criterion, side)
                self.fields[name] = self._field(criterion, side)
                self.questions.append(Question(criterion, side, name, key))
        # Answers come first on the page and in error lists; the free-form fields last.
        self.order_fields([q.name for q in self.questions])
        for q in self.questions:
            q.bound = self[q.name]

    def _field(self, criterion: Criterion, side: str | None) -> forms.Field:
        who = f" for {SIDE_LABELS[side]}" if side else ""
        label = (criterion.question or criterion.slug) + (f" ({SIDE_LABELS[side]})" if side else "")
        if criterion.kind == "pairwise":
            choices = [("left", "Response A"), ("right", "Response B")]
            if criterion.allow_tie:
                choices.append((TIE, "Tie"))
            hint = "Response A, Response B or a tie" if criterion.allow_tie else "Response A or Response B"
            return forms.ChoiceField(
                label=label,
                choices=choices,
                widget=forms.RadioSelect,
                error_messages={
                    "required": f"Choose {hint}.",
                    "invalid_choice": f"Choose {hint}; “%(value)s” is not an answer here.",
                },
            )
        if criterion.kind == "choice":
            return forms.ChoiceField(
                label=label,
                choices=[(o.value, o.label) for o in criterion.options],
                widget=forms.RadioSelect,
                error_messages={
                    "required": f"Choose an answer{who}.",
                    "invalid_choice": "“%(value)s” is not an option of this rubric version.",
                },
            )
        span = f"from {criterion.min} to {criterion.max}"
        values = range(criterion.min, criterion.max + 1)
        widget = (
            forms.RadioSelect(choices=[(str(v), str(v)) for v in values])
            if len(values) <= MAX_SCALE_RADIOS
            else forms.NumberInput(attrs={"min": criterion.min, "max": criterion.max, "step": 1})
        )
        return forms.IntegerField(
            label=label,
            min_value=criterion.min,
            max_value=criterion.max,
            widget=widget,
            error_messages={
                "required": f"Choose a value{who}, {span}.",
                "invalid": f"Enter a whole number {span}.",
                "min_value": f"Choose a value {span}.",
                "max_value": f"Choose a value {span}.",
            },
        )

    def clean(self):
        cleaned = super().clean()
        item = self.assignment.item
        keys = (item.response_a.key, item.response_b.key)
        for q in self.questions:
            if q.name not in cleaned:
                continue
            try:
                value = cleaned[q.name]
                if q.criterion.kind == "pairwise" and value != TIE:
                    value = self.responses[value].key
                # The rubric's own check has the last word (the form mirrors it).
                q.criterion.check_value(value, keys)
            except ValueError as exc:
                self.add_error(q.name, str(exc))
        return cleaned

    def answers(self) -> list[tuple[str, int | None, str]]:
        """(criterion, response id or None, value) for queue.submit; call after is_valid()."""
        out = []
        for q in self.questions:
            value = self.cleaned_data[q.name]
            if q.criterion.kind == "pairwise":
                value = TIE if value == TIE else self.responses[value].key
            response_id = self.responses[q.side].pk if q.side else None
            out.append((q.criterion.slug, response_id, str(value)))
        return out

    def question_html(self, q: Question) -> SafeString:
        """One question's markup. Unbound and without initial answers (a fresh compare page), it
        depends only on the published rubric version and the question, so each process renders it
        once; with answers, errors or initial values (the gold page), afresh."""
        version = self.assignment.rubric_version
        fresh = type(self) is JudgmentForm and not self.is_bound
        if not fresh or version is None or version.pk is None or version.published_at is None:
            return render_to_string(QUESTION_TEMPLATE, {"q": q})
        key = (version.pk, version.published_at, q.name)
        html = _QUESTION_HTML.get(key)
        if html is None:
            if len(_QUESTION_HTML) >= QUESTION_CACHE_SIZE:
                _QUESTION_HTML.clear()
            html = _QUESTION_HTML[key] = render_to_string(QUESTION_TEMPLATE, {"q": q})
        return html

    @property
    def pairwise_questions(self) -> list[Question]:
        return [q for q in self.questions if q.criterion.kind == "pairwise"]

    def side_questions(self, side: str) -> list[Question]:
        return [q for q in self.questions if q.side == side]

    @property
    def left_questions(self) -> list[Question]:
        return self.side_questions("left")

    @property
    def right_questions(self) -> list[Question]:
        return self.side_questions("right")

    @property
    def item_questions(self) -> list[Question]:
        """Questions about the pair that are not pairwise (a choice or scale for the whole item)."""
        return [q for q in self.questions if q.side is None and q.criterion.kind != "pairwise"]

    @property
    def shortcut_pairwise(self) -> Question | None:
        """The pairwise question that 1 / 2 / T answer."""
        return next((q for q in self.questions if q.criterion.kind == "pairwise" and q.key is None), None)


QUESTION_TEMPLATE = "reviews/partials/question.html"
QUESTION_CACHE_SIZE = 2048
_QUESTION_HTML: dict = {}  # (rubric version id, its publication time, question name) -> markup


ESCALATION_REASONS = [(value, label) for value, label in Escalation.Reason.choices if value != Escalation.Reason.RULE]


class EscalateForm(forms.Form):
    """Send the item to the leads: a reason, and a comment (needed when the reason is "other")."""

    # The compare page holds this form beside the judgment form: keep their field ids apart.
    prefix = "escalate"
    reason = forms.ChoiceField(
        label="Reason",
        choices=ESCALATION_REASONS,
        widget=forms.RadioSelect,
        error_messages={
            "required": "Choose a reason for the escalation.",
            "invalid_choice": "Choose one of the listed reasons.",
        },
    )
    comment = forms.CharField(
        label="Comment",
        required=False,
        max_length=5000,
        widget=forms.Textarea(attrs={"rows": 2}),
    )
    time_spent_ms = TimeSpentField()

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("reason") == Escalation.Reason.OTHER and not cleaned.get("comment", "").strip():
            self.add_error("comment", "Say what is wrong when the reason is “other”.")
        return cleaned


class SkipForm(forms.Form):
    prefix = "skip"
    time_spent_ms = TimeSpentField()


# -- gold ----------------------------------------------------------------------------------


class GoldForm(JudgmentForm):
    """The compare page's questions, for an admin to give an item's known answers (any subset)."""

    def __init__(self, item: Item, rubric_version: RubricVersion, *args, gold: list[dict] | None = None, **kwargs):
        # The admin is not blind: Response A is always the item's first response.
        assignment = Assignment(item=item, left_response=item.response_a, rubric_version=rubric_version)
        super().__init__(assignment, *args, **kwargs)
        for name in ("confidence", "rationale", "time_spent_ms"):
            del self.fields[name]
        side_of = {item.response_a.key: "left", item.response_b.key: "right"}
        for q in self.questions:
            q.bound.field.required = False
        for answer in gold or []:
            criterion = self.rubric.criterion(answer.get("criterion"))
            if criterion is None:
                continue
            side = side_of.get(answer.get("response")) if criterion.per_response else None
            name = f"q.{criterion.slug}" + (f".{side}" if side else "")
            if name in self.fields:
                value = answer["value"]
                if criterion.kind == "pairwise":
                    value = side_of.get(value, value)
                self.initial[name] = str(value)

    def clean(self):
        cleaned = forms.Form.clean(self)
        if not any(cleaned.get(q.name) not in (None, "") for q in self.questions):
            raise forms.ValidationError("Give at least one known answer, or unmark the item as gold.")
        return cleaned

    def gold_answers(self) -> list[dict]:
        """The answers given, in the import format (reviews.labeling.gold.mark_gold validates them)."""
        out = []
        for q in self.questions:
            value = self.cleaned_data.get(q.name)
            if value in (None, ""):
                continue
            if q.criterion.kind == "pairwise" and value != TIE:
                value = self.responses[value].key
            answer = {"criterion": q.criterion.slug, "value": value}
            if q.side:
                answer["response"] = self.responses[q.side].key
            out.append(answer)
        return out
