"""The form of the dataset page: export format and filters, turned into reviews.datasets.export.Filters."""

from django import forms

from reviews.datasets.export import Filters
from reviews.models import DatasetVersion


class DatasetForm(forms.Form):
    format = forms.ChoiceField(choices=DatasetVersion.Format.choices, widget=forms.RadioSelect, initial="preference")
    rubric_version = forms.TypedChoiceField(
        coerce=int, empty_value=None, required=False, help_text="only items whose labels were all made under it"
    )
    adjudicated_only = forms.BooleanField(required=False, label="Only adjudicated items")
    min_agreement = forms.FloatField(
        required=False, min_value=0, max_value=1, label="Minimum agreement", help_text="0 to 1; empty: no minimum"
    )
    tags = forms.CharField(required=False, max_length=1000, help_text="comma-separated; items must carry all of them")

    def __init__(self, *args, rubric_versions=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["rubric_version"].choices = [("", "any"), *((n, f"v{n}") for n in rubric_versions)]

    def filters(self) -> Filters:
        data = self.cleaned_data
        tags = tuple(dict.fromkeys(t.strip() for t in data["tags"].split(",") if t.strip()))
        return Filters(
            rubric_version=data["rubric_version"],
            adjudicated_only=data["adjudicated_only"],
            min_agreement=data["min_agreement"],
            tags=tags,
        )
