"""Who works on which campaign: add and remove members, each change a MEMBERSHIP_CHANGED event.

What a membership lets someone see is an access rule: reviews.access (`may_work_in`,
`visible_campaigns`).

Membership rows are never deleted: removing a member sets `active` to False, so the history of
who worked where stays. Labelers only ever see campaigns they are active members of; leads and
admins see every campaign (for them a membership says who works where).
"""

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from reviews.access import forget_may_work_in
from reviews.core.exceptions import DomainError
from reviews.core.roles import Role, role_of
from reviews.models import Campaign, FeedbackEvent, Membership


class MembershipError(DomainError):
    """A membership change that cannot be made (unknown user, user without a role...)."""


def _record(campaign, membership, *, by, change: str, note: str) -> None:
    FeedbackEvent.record(
        campaign,
        FeedbackEvent.Action.MEMBERSHIP_CHANGED,
        {
            "change": change,
            "user": membership.user.get_username(),
            "user_id": membership.user_id,
            "member_role": (role_of(membership.user) or Role.LABELER).value if membership.user.is_active else "",
            "note": note,
        },
        actor=by,
        scoring_run=None,
    )


def add_member(campaign: Campaign, user, *, by=None, note: str = "") -> tuple[Membership, bool]:
    """Make the user an active member (re-activating a former one); returns (membership, changed).

    Adding an active member again changes nothing and records nothing.
    """
    if user is None or not user.pk:
        raise MembershipError("No such user.")
    with transaction.atomic():
        membership, created = Membership.objects.select_for_update().get_or_create(
            campaign=campaign, user=user, defaults={"added_by": by}
        )
        if not created and membership.active:
            return membership, False
        if not created:
            membership.active = True
            membership.added_by = by
            membership.updated_at = timezone.now()
            membership.save(update_fields=["active", "added_by", "updated_at"])
        _record(campaign, membership, by=by, change="added" if created else "reactivated", note=note)
    return membership, True


def remove_member(campaign: Campaign, user, *, by=None, note: str = "") -> bool:
    """Deactivate the user's membership; returns False when they were not an active member."""
    with transaction.atomic():
        forget_may_work_in(user, campaign)
        membership = Membership.objects.select_for_update().filter(campaign=campaign, user=user, active=True).first()
        if membership is None:
            return False
        membership.active = False
        membership.updated_at = timezone.now()
        membership.save(update_fields=["active", "updated_at"])
        _record(campaign, membership, by=by, change="removed", note=note)
    return True


def add_member_by_username(campaign: Campaign, username: str, *, by=None, note: str = "") -> tuple[Membership, bool]:
    """`add_member` for a username; a clear error when there is no such user."""
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        raise MembershipError(f"There is no user {username!r}.")
    return add_member(campaign, user, by=by, note=note)


def members(campaign: Campaign):
    """The campaign's memberships (active first, then by username), with users and who added them."""
    return (
        Membership.objects.filter(campaign=campaign)
        .select_related("user", "added_by")
        .prefetch_related("user__groups")
        .order_by("-active", "user__username")
    )
