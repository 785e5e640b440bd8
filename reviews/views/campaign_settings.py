"""The campaign settings page: every setting, saved as a new version, with the history of versions."""

from django.contrib import messages
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from reviews.access import get_campaign_for, role_required
from reviews.campaigns.forms import SettingsForm
from reviews.campaigns.settings_history import SettingsError, change_settings, settings_history
from reviews.core.roles import Role


@role_required(Role.ADMIN)
@require_http_methods(["GET", "POST"])
def campaign_settings(request, slug):
    """Show the settings in force and their history; a save records a new version (who, when, note)."""
    campaign = get_campaign_for(request.user, slug)
    current = campaign.settings
    form = SettingsForm(request.POST if request.method == "POST" else None, initial=current.values())
    if request.method == "POST" and form.is_valid():
        try:
            version = change_settings(
                campaign, form.values(), user=request.user, note=form.cleaned_data["note"].strip()
            )
        except SettingsError as exc:
            for name, errors in exc.errors.items():
                for error in errors:
                    form.add_error(name if name in form.fields else None, error)
        else:
            if version is None:
                messages.info(request, f"Nothing changed: the settings stay at version {current.number}.")
            else:
                messages.success(request, f"Saved as settings version {version.number}.")
            return redirect("reviews:campaign_settings", campaign.slug)
    context = {"campaign": campaign, "current": current, "form": form, "history": settings_history(campaign)}
    return render(request, "reviews/settings/campaign_settings.html", context, status=400 if form.errors else 200)
