"""Who may see what: views call these first, so role rules live in one place."""

from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import get_object_or_404, render

from reviews.core.roles import RANK, Role, role_of
from reviews.models import Campaign, Membership

NO_ROLE_TEMPLATE = "reviews/no_role.html"


def user_role(user) -> Role | None:
    """The user's role, looked up once per user object (so once per request for request.user)."""
    try:
        return user._reviews_role
    except AttributeError:
        user._reviews_role = role_of(user)
        return user._reviews_role


def user_has_role(user, minimum: Role) -> bool:
    """True when the user's role is `minimum` or a higher one."""
    role = user_role(user)
    return role is not None and RANK[role] >= RANK[minimum]


def role_required(minimum: Role):
    """Anonymous users go to the login page; signed-in users below `minimum` get a 403."""

    def decorator(view):
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            role = user_role(request.user)
            if role is None:
                return render(request, NO_ROLE_TEMPLATE, status=403)
            if RANK[role] < RANK[minimum]:
                raise PermissionDenied(f"This page needs the {minimum.label.lower()} role.")
            return view(request, *args, **kwargs)

        # Read by the permission-matrix test, which walks every route.
        wrapped.required_role = minimum
        return wrapped

    return decorator


def visible_campaigns(user):
    """The campaigns the user may see: every one for leads and admins, a labeler's own (active
    memberships) for labelers, none without a role."""
    role = user_role(user)
    if role is None:
        return Campaign.objects.none()
    if sees_every_campaign(role):
        return Campaign.objects.all()
    return Campaign.objects.filter(id__in=member_campaign_ids(user))


def get_campaign_for(user, slug: str, *, versions: bool = False) -> Campaign:
    """A campaign the user may open, by slug; 404 when there is none or (labelers) when they are
    not a member of it, so that a campaign's existence does not leak. `versions`: with the ids of
    its settings and rubric versions in force (as CampaignQuerySet.with_versions) and without its
    rubric row, for pages that read the versions and change neither (the labelers' work page)."""
    role = user_role(user)
    if role is None:
        raise PermissionDenied("You have no role yet.")
    if versions:
        campaign = _campaign_with_versions(slug, None if sees_every_campaign(role) else user)
        if campaign is None:
            raise Http404("No such campaign.")
    else:
        campaign = get_object_or_404(visible_campaigns(user).select_related("rubric"), slug=slug)
    # Found among the campaigns the user may see: the queue need not ask again in this request.
    note_may_work_in(user, campaign)
    return campaign


# The labelers' work page runs this on every request; through the ORM (two subquery annotations
# and the membership filter) it cost more CPU to build than the database took to answer.
CAMPAIGN_SQL = (
    "SELECT c.*, "
    "(SELECT v.id FROM reviews_campaignsettings v WHERE v.campaign_id = c.id ORDER BY v.number DESC LIMIT 1) "
    "AS current_settings_id, "
    "(SELECT v.id FROM reviews_rubricversion v WHERE v.rubric_id = c.rubric_id AND v.published_at IS NOT NULL "
    "ORDER BY v.number DESC LIMIT 1) AS current_rubric_version_id "
    "FROM reviews_campaign c WHERE c.slug = %s"
)
MEMBER_SQL = " AND c.id IN (SELECT m.campaign_id FROM reviews_membership m WHERE m.user_id = %s AND m.active)"


def _campaign_with_versions(slug: str, member) -> Campaign | None:
    """The campaign by slug (only if `member`, when given, is an active member of it)."""
    sql, params = CAMPAIGN_SQL, [slug]
    if member is not None:
        sql, params = sql + MEMBER_SQL, [slug, member.pk]
    return next(iter(Campaign.objects.raw(sql, params)), None)


# -- membership: labelers see only the campaigns they are active members of ------------------


def is_member(user, campaign) -> bool:
    """True when the user is an active member of the campaign."""
    return Membership.objects.filter(user=user, campaign=campaign, active=True).exists()


def may_work_in(user, campaign) -> bool:
    """Leads and admins work anywhere; labelers only in campaigns they are active members of
    (not asked again for a campaign this request found among the user's visible campaigns)."""
    if campaign.pk in _noted(user):
        return True
    return sees_every_campaign(user_role(user)) or is_member(user, campaign)


def note_may_work_in(user, campaign) -> None:
    """Record that the user may work in a campaign just found among their visible campaigns."""
    _noted(user).add(campaign.pk)


def forget_may_work_in(user, campaign) -> None:
    """Forget a noted campaign (the user was just taken off it)."""
    _noted(user).discard(campaign.pk)


def _noted(user) -> set:
    # On the user object (request.user proxies attributes to it), like user_role.
    try:
        return user._reviews_may_work_in
    except AttributeError:
        user._reviews_may_work_in = set()
        return user._reviews_may_work_in


def member_campaign_ids(user):
    """A subquery of the ids of the campaigns the user is an active member of."""
    return Membership.objects.filter(user=user, active=True).values("campaign_id")


def sees_every_campaign(role: Role | None) -> bool:
    """Leads and admins see every campaign; labelers only their own."""
    return role is not None and RANK[role] >= RANK[Role.LEAD]
