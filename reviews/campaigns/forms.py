"""Forms of the campaign admin pages: a new campaign (reviews.campaigns.setup.open_campaign), and the
settings page's fields turned into a new settings version (reviews.campaigns.settings_history)."""

from django import forms

from reviews.models import CampaignSettings, Rubric

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


class CampaignForm(forms.ModelForm):
    """Title, slug and rubric of a new campaign, plus its initial settings (the model's fields and rules)."""

    title = forms.CharField(max_length=200)
    slug = forms.SlugField(max_length=50, help_text="Used in addresses; letters, digits, hyphens.")
    rubric = forms.ModelChoiceField(Rubric.objects.order_by("slug"), required=False, empty_label="(none yet)")

    class Meta:
        model = CampaignSettings
        fields = CampaignSettings.SETTING_FIELDS
