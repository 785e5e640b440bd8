"""Campaign membership (admins) and creating a campaign in the app."""

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from reviews import nav
from reviews.access import get_campaign_for, role_required, user_role
from reviews.campaigns.forms import CampaignForm
from reviews.campaigns.setup import open_campaign
from reviews.core.exceptions import DomainError
from reviews.core.roles import Role, role_of
from reviews.models import CampaignSettings
from reviews.people.membership import add_member, remove_member
from reviews.people.membership import members as campaign_members


@role_required(Role.ADMIN)
@require_http_methods(["GET", "POST"])
def campaign_create(request):
    """Create a campaign: title, slug, rubric and initial settings."""
    form = CampaignForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        settings = {name: data[name] for name in CampaignSettings.SETTING_FIELDS}
        try:
            campaign = open_campaign(
                data["slug"], data["title"], rubric=data["rubric"], settings=settings, user=request.user
            )
        except ValidationError as exc:
            for message in exc.messages:
                form.add_error(None, message)
        except DomainError as exc:
            form.add_error("slug", str(exc))
        else:
            messages.success(request, f"Campaign {campaign.title} created. Add its labelers on the Members page.")
            return redirect("reviews:members", campaign.slug)
    status = 400 if request.method == "POST" else 200
    return render(request, "reviews/people/campaign_new.html", {"form": form}, status=status)


@role_required(Role.ADMIN)
def members(request, slug):
    """Who works on the campaign (and who did), with forms to add and remove members."""
    campaign = get_campaign_for(request.user, slug)
    rows = list(campaign_members(campaign))
    active_ids = {m.user_id for m in rows if m.active}
    candidates = [
        u for u in get_user_model().objects.filter(is_active=True).exclude(id__in=active_ids).order_by("username")
    ]
    context = {
        "campaign": campaign,
        "memberships": [{"m": m, "role": role_of(m.user)} for m in rows],
        "candidates": [{"user": u, "role": role_of(u)} for u in candidates if role_of(u) is not None],
        "campaign_links": nav.campaign_links(user_role(request.user), campaign.slug),
    }
    return render(request, "reviews/people/members.html", context)


def _user_from(request):
    username = request.POST.get("username", "").strip()
    return get_user_model().objects.filter(username=username).first(), username


@role_required(Role.ADMIN)
@require_POST
def member_add(request, slug):
    campaign = get_campaign_for(request.user, slug)
    user, username = _user_from(request)
    if user is None:
        messages.error(request, f"There is no user {username!r}; nothing was changed.")
        return redirect("reviews:members", campaign.slug)
    _, changed = add_member(campaign, user, by=request.user, note=request.POST.get("note", "").strip())
    if changed:
        messages.success(request, f"{user.username} now works on {campaign.title}.")
    else:
        messages.info(request, f"{user.username} already is a member.")
    return redirect("reviews:members", campaign.slug)


@role_required(Role.ADMIN)
@require_POST
def member_remove(request, slug):
    campaign = get_campaign_for(request.user, slug)
    user, username = _user_from(request)
    if user is None:
        messages.error(request, f"There is no user {username!r}; nothing was changed.")
    elif remove_member(campaign, user, by=request.user, note=request.POST.get("note", "").strip()):
        messages.success(request, f"{user.username} no longer works on {campaign.title}.")
    else:
        messages.info(request, f"{user.username} was not a member.")
    return redirect("reviews:members", campaign.slug)
