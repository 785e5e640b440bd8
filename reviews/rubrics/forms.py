"""Forms of the rubric editor: they turn posted fields into what reviews.rubrics.editor takes.

The rubric's own validation (reviews.rubrics.definition.parse_rubric) has the last word.
"""

from django import forms

from reviews.rubrics.definition import KINDS

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
