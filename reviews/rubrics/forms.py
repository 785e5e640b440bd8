"""Forms of the admin pages for rubrics, campaign settings and gold items.

They turn posted fields into the values reviews.rubric_editor, reviews.settings_history and
reviews.gold take; the rubric's own validation (reviews.rubric.parse_rubric) has the last word.
"""

from django import forms

from reviews.labeling.forms import JudgmentForm
from reviews.models import Assignment, CampaignSettings, Item, RubricVersion
from reviews.rubrics.definition import KINDS, TIE

OPTION_HELP = "One option per line: value | Label, and | risk for an outcome that counts as a risk event."


def options_to_text(options: list[dict]) -> str:
    return "\n".join(f"{o['value']} | {o['label']}" + (" | risk" if o.get("risk") else "") for o in options)


class RubricForm(forms.Form):
    title = forms.CharField(max_length=200)
    guidelines = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 12}),
        help_text="Markdown, shown to labelers above every item.",
    )


class CriterionForm(forms.Form):
    slug = forms.CharField(max_length=100, help_text="lowercase letters, digits, - and _")
    # A blank first choice: the spare row of the formset stays unchanged (and ignored) until used.
    kind = forms.ChoiceField(choices=[("", "— kind —"), *((k, k) for k in KINDS)])
    question = forms.CharField(max_length=1000, widget=forms.Textarea(attrs={"rows": 2}))
    per_response = forms.BooleanField(required=False, label="Ask for each response")
    allow_tie = forms.BooleanField(required=False, label="Allow a tie (pairwise)")
    min = forms.IntegerField(required=False, label="Scale min")
    max = forms.IntegerField(required=False, label="Scale max")
    options = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 4}), help_text=OPTION_HELP, label="Options (choice)"
    )

    def clean_options(self):
        out = []
        for number, line in enumerate(self.cleaned_data["options"].splitlines(), start=1):
            if not line.strip():
                continue
            parts = [p.strip() for p in line.split("|")]
            if len(parts) > 3 or (len(parts) == 3 and parts[2].lower() not in ("risk", "")):
                raise forms.ValidationError(f"Line {number}: expected value | Label | risk, got “{line.strip()}”.")
            option = {"value": parts[0], "label": parts[1] if len(parts) > 1 and parts[1] else parts[0]}
            if len(parts) == 3 and parts[2].lower() == "risk":
                option["risk"] = True
            out.append(option)
        return out

    def criterion(self) -> dict:
        """The criterion in FORMATS.md form (kind-specific keys only)."""
        data = self.cleaned_data
        out = {"slug": data["slug"].strip(), "kind": data["kind"], "question": data["question"].strip()}
        if data["kind"] == "pairwise":
            out["allow_tie"] = data["allow_tie"]
            if data["per_response"]:
                out["per_response"] = True  # refused by the rubric check, with its message
        else:
            out["per_response"] = data["per_response"]
        if data["kind"] == "choice":
            out["options"] = data["options"]
        if data["kind"] == "scale":
            out["min"], out["max"] = data["min"], data["max"]
        return out


class BaseCriterionFormSet(forms.BaseFormSet):
    def criteria(self) -> list[dict]:
        """The kept criteria in their chosen order (after is_valid)."""
        return [form.criterion() for form in self.ordered_forms]


CriterionFormSet = forms.formset_factory(
    CriterionForm, formset=BaseCriterionFormSet, extra=1, can_delete=True, can_order=True
)


def editor_initial(definition: dict) -> tuple[dict, list[dict]]:
    """Initial values of the rubric form and the criteria formset from a definition."""
    if not isinstance(definition, dict):
        definition = {}
    criteria = []
    for order, c in enumerate(definition.get("criteria") or [], start=1):
        if not isinstance(c, dict):
            continue
        criteria.append(
            {
                "slug": c.get("slug", ""),
                "kind": c.get("kind", ""),
                "question": c.get("question", ""),
                "per_response": c.get("per_response", False),
                "allow_tie": c.get("allow_tie", False),
                "min": c.get("min"),
                "max": c.get("max"),
                "options": options_to_text(c.get("options", [])),
                "ORDER": order,
            }
        )
    return {"title": definition.get("title", ""), "guidelines": definition.get("guidelines", "")}, criteria


class ImportRubricForm(forms.Form):
    file = forms.FileField(required=False, label="Rubric JSON file")
    text = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 10}), label="…or paste the JSON")

    def clean(self):
        cleaned = super().clean()
        if not cleaned.get("file") and not (cleaned.get("text") or "").strip():
            raise forms.ValidationError("Choose a file or paste the rubric JSON.")
        return cleaned

    def payload(self) -> bytes | str:
        upload = self.cleaned_data.get("file")
        return upload.read() if upload else self.cleaned_data["text"]


class PublishForm(forms.Form):
    note = forms.CharField(
        label="Change note",
        max_length=5000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="What changed and why; kept with the version and shown in its history.",
        error_messages={"required": "Write a change note: it says what changed and why."},
    )


# -- campaign settings ---------------------------------------------------------------------

SETTINGS_HELP = {
    "lambda_risk": "λ_risk: weight of the risk term r in the utility.",
    "lambda_uncertainty": "λ_unc: weight of the uncertainty term h.",
    "lambda_diversity": "λ_div: weight of the diversity term d.",
    "budget_total": "Total human judgments the campaign may spend; empty = no cap.",
    "budget_daily": "Judgments per day; empty = no daily cap.",
    "overlap_k": "Distinct labelers per item (k ≥ 1).",
    "audit_share": "ε: share of the budget drawn uniformly at random, in [0, 1].",
    "gold_rate": "Share of served items that are gold items, in [0, 1].",
    "lease_minutes": "How long a labeler holds an item before it returns to the queue.",
    "tau_risk": "τ_risk: escalate a labeled item whose risk is at least this, in [0, 1].",
    "tau_disagree": "τ_disagree: escalate when normalized vote entropy is at least this, in [0, 1].",
    "tau_conf": "τ_conf: escalate when mean labeler confidence is at most this (1–5 scale).",
    "sla_hours": "Hours within which an escalation should be adjudicated.",
    "rescore_every": "Rescore after this many new judgments (N ≥ 1).",
    "uncertainty_mode": "How h measures a pair: the entropy of its preference, or the information a vote "
    "would give the reward model (D-optimal, greedy within a batch). Automated labels count in both.",
}


def _float(label, lo=None, hi=None):
    span = (
        f" between {lo} and {hi}"
        if lo is not None and hi is not None
        else (f" of at least {lo}" if lo is not None else "")
    )
    return forms.FloatField(
        label=label,
        min_value=lo,
        max_value=hi,
        error_messages={
            "required": f"{label} is required.",
            "invalid": f"{label}: enter a number.",
            "min_value": f"{label} must be a number{span}.",
            "max_value": f"{label} must be a number{span}.",
        },
    )


def _int(label, lo, required=True):
    return forms.IntegerField(
        label=label,
        min_value=lo,
        required=required,
        error_messages={
            "required": f"{label} is required.",
            "invalid": f"{label}: enter a whole number.",
            "min_value": f"{label} cannot be less than {lo}.",
        },
    )


class SettingsForm(forms.Form):
    lambda_risk = _float("λ risk", 0)
    lambda_uncertainty = _float("λ uncertainty", 0)
    lambda_diversity = _float("λ diversity", 0)
    budget_total = _int("Total budget", 0, required=False)
    budget_daily = _int("Daily budget", 0, required=False)
    overlap_k = _int("Overlap k", 1)
    audit_share = _float("Audit share ε", 0, 1)
    gold_rate = _float("Gold rate", 0, 1)
    lease_minutes = _int("Lease length (minutes)", 1)
    tau_risk = _float("τ risk", 0, 1)
    tau_disagree = _float("τ disagree", 0, 1)
    tau_conf = _float("τ confidence", 1, 5)
    sla_hours = _float("Escalation SLA (hours)", 0)
    rescore_every = _int("Rescore after N judgments", 1)
    uncertainty_mode = forms.ChoiceField(
        label="Uncertainty mode",
        choices=CampaignSettings.Uncertainty.choices,
        error_messages={"invalid_choice": "Uncertainty mode: choose entropy or fisher."},
    )
    note = forms.CharField(
        label="Note", required=False, max_length=2000, help_text="Why this change (kept in the history)."
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name, text in SETTINGS_HELP.items():
            self.fields[name].help_text = text

    def clean(self):
        cleaned = super().clean()
        lambdas = [cleaned.get(n) for n in ("lambda_risk", "lambda_uncertainty", "lambda_diversity")]
        if all(v is not None for v in lambdas) and sum(lambdas) <= 0:
            raise forms.ValidationError("At least one λ weight must be positive: with all three at zero nothing ranks.")
        if cleaned.get("sla_hours") is not None and cleaned["sla_hours"] <= 0:
            self.add_error("sla_hours", "Escalation SLA (hours) must be positive.")
        return cleaned

    def values(self) -> dict:
        return {name: self.cleaned_data[name] for name in CampaignSettings.SETTING_FIELDS}


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
        """The answers given, in the import format (reviews.gold.mark_gold validates them)."""
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
