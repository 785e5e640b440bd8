"""The form of the admins' people page: a new person with a role and, optionally, campaigns."""

from django import forms

from reviews.core.roles import Role
from reviews.models import Campaign

ROLE_CHOICES = [(r.value, r.label) for r in Role]


class PersonForm(forms.Form):
    username = forms.CharField(max_length=150)
    role = forms.ChoiceField(choices=ROLE_CHOICES)
    email = forms.EmailField(required=False)
    password = forms.CharField(widget=forms.PasswordInput, help_text="At least the configured password rules.")
    campaigns = forms.ModelMultipleChoiceField(
        Campaign.objects.order_by("slug"), required=False, widget=forms.CheckboxSelectMultiple
    )
