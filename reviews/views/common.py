"""Pages every role shares: home routing and the campaign overview."""

from django.shortcuts import redirect, render

from reviews import nav
from reviews.access import get_campaign_for, role_required, user_has_role, user_role
from reviews.campaigns.status import campaign_status, campaigns_overview, final_answer_tables
from reviews.core.roles import Role

# Where each role starts its day; the one place to change when a role gets its own page.
HOME_BY_ROLE = {
    Role.LABELER: "reviews:work_start",
    Role.LEAD: "reviews:escalations",
    Role.ADMIN: "reviews:campaigns",
}


@role_required(Role.LABELER)
def home(request):
    """Send each role to its work."""
    return redirect(HOME_BY_ROLE[user_role(request.user)])


@role_required(Role.LABELER)
def campaigns(request):
    """Every campaign with its headline counts."""
    rows = campaigns_overview(user=request.user)
    return render(request, "reviews/campaigns.html", {"campaigns": rows})


@role_required(Role.LABELER)
def campaign_detail(request, slug):
    """A campaign's figures; leads and admins also see the final answers by model and tag."""
    campaign = get_campaign_for(request.user, slug)
    show_answers = user_has_role(request.user, Role.LEAD)
    # Labelers never see the answers table: skip its cost (every item's tags) for them.
    status = campaign_status(campaign, with_final_answers=show_answers)
    context = {
        "campaign": campaign,
        "status": status,
        "show_answers": show_answers,
        "final_answer_tables": final_answer_tables(status["final_answers"]) if show_answers else [],
        "scoring_runs": campaign.scoring_runs.order_by("-requested_at", "-id")[:10] if show_answers else [],
        "can_rescore": user_has_role(request.user, Role.ADMIN),
        "campaign_links": nav.campaign_links(user_role(request.user), campaign.slug),
    }
    return render(request, "reviews/campaign_detail.html", context)
