"""The form of the admins' API token page: a client's name and the campaigns it may use."""

from django import forms

from reviews.api.tokens import MAX_NAME_LENGTH
from reviews.models import Campaign


class CampaignChoices(forms.ModelMultipleChoiceField):
    def label_from_instance(self, obj):
        return f"{obj.title} ({obj.slug})"


class TokenForm(forms.Form):
    name = forms.CharField(max_length=MAX_NAME_LENGTH, help_text="which client uses it, e.g. 'prod guardrail monitor'")
    campaigns = CampaignChoices(queryset=Campaign.objects.order_by("slug"), widget=forms.CheckboxSelectMultiple)
