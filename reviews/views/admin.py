"""Admin actions: campaign-level operations that change how the system works."""

from django.contrib import messages
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.http import require_POST

from reviews.access import get_campaign_for, role_required
from reviews.core.roles import Role
from scoring.runs import request_rescore


@require_POST
@role_required(Role.ADMIN)
def campaign_rescore(request, slug):
    """The 'Rescore now' button: queue a run (or join the queued one) and say which."""
    campaign = get_campaign_for(request.user, slug)
    result = request_rescore(campaign, trigger=f"button ({request.user.get_username()})")
    level = messages.WARNING if result.outcome == "unavailable" else messages.SUCCESS
    messages.add_message(request, level, f"Run #{result.run.id}: {result.message}.")
    return redirect(reverse("reviews:campaign", args=[campaign.slug]) + "#scoring")
