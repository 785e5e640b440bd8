"""People (admins): create users, set roles, deactivate and re-activate them, and each labeler's
recent throughput, agreement with final answers and gold accuracy.

Account changes have no campaign, so they are not FeedbackEvents (whose rows belong to a
campaign); they are recorded in Django's admin log (LogEntry: who, when, what), like changes
made in the support admin. Membership changes are FeedbackEvents (reviews.people.membership).
"""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import timedelta

from django.contrib.admin.models import ADDITION, CHANGE, LogEntry
from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.db.models import Count, F, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from reviews.core.exceptions import DomainError
from reviews.core.roles import Role, role_of
from reviews.labeling.progress import gold_accuracy
from reviews.models import Answer, Campaign, FinalAnswer, Judgment, LabelKind, Membership
from reviews.people.accounts import create_user, set_role
from reviews.people.membership import add_member

RECENT_DAYS = 7


class PeopleError(DomainError):
    """An account change that cannot be made; nothing was written."""


def _log(actor, user, flag: int, message: str) -> None:
    if actor is None:
        return
    LogEntry.objects.log_actions(
        user_id=actor.pk,
        queryset=[user],
        action_flag=flag,
        change_message=message,
        single_object=True,
    )


def create_person(username: str, role: Role, *, password: str, email: str = "", campaigns=(), by=None) -> object:
    """A new user with a role (and memberships); the password must pass the password validators."""
    username = (username or "").strip()
    if not username:
        raise PeopleError("A username is required.")
    User = get_user_model()
    if User.objects.filter(username=username).exists():
        raise PeopleError(f"The username {username!r} is taken.")
    from django.core.exceptions import ValidationError

    try:
        validate_password(password, User(username=username, email=email))
    except ValidationError as exc:
        raise PeopleError("Password refused: " + " ".join(exc.messages)) from exc
    with transaction.atomic():
        user = create_user(username, role, password=password, email=email)
        for campaign in campaigns:
            add_member(campaign, user, by=by, note="account created")
        _log(by, user, ADDITION, f"Created with the role {role.value}.")
    return user


def change_role(user, role: Role, *, by) -> bool:
    """Give the user exactly this role; admins cannot lower their own role. Returns whether it changed."""
    if by is not None and by.pk == user.pk and role != Role.ADMIN:
        raise PeopleError("You cannot lower your own role: ask another admin.")
    old = role_of(user)
    if old == role:
        return False
    with transaction.atomic():
        set_role(user, role)
        _log(by, user, CHANGE, f"Role {old.value if old else 'none'} → {role.value}.")
    return True


def set_active(user, active: bool, *, by) -> bool:
    """Deactivate (the user can no longer sign in; history is kept) or re-activate a user."""
    if by is not None and by.pk == user.pk and not active:
        raise PeopleError("You cannot deactivate yourself.")
    if user.is_active == active:
        return False
    with transaction.atomic():
        user.is_active = active
        user.save(update_fields=["is_active"])
        _log(by, user, CHANGE, "Re-activated." if active else "Deactivated.")
    return True


@dataclass
class PersonRow:
    user: object
    role: Role | None
    campaigns: list = field(default_factory=list)
    recent: int = 0
    total: int = 0
    agreement: float | None = None
    compared: int = 0
    gold: float | None = None
    gold_compared: int = 0

    @property
    def per_day(self) -> float:
        return self.recent / RECENT_DAYS


def agreement_by_user(since=None) -> dict[int, tuple[int, int]]:
    """{user id: (answers that match the final answer, answers with a final answer)} over human judgments."""
    item_final = FinalAnswer.objects.filter(
        item_id=OuterRef("judgment__item_id"), criterion=OuterRef("criterion")
    ).values("value")[:1]
    response_final = FinalAnswer.objects.filter(
        response_id=OuterRef("response_id"), criterion=OuterRef("criterion")
    ).values("value")[:1]
    answers = Answer.objects.filter(judgment__kind=LabelKind.HUMAN, judgment__annotator__user__isnull=False)
    if since is not None:
        answers = answers.filter(judgment__created_at__gte=since)
    rows = (
        answers.annotate(final=Coalesce(Subquery(item_final), Subquery(response_final)))
        .filter(final__isnull=False)
        .values("judgment__annotator__user_id")
        .annotate(compared=Count("id"), matched=Count("id", filter=Q(final=F("value"))))
    )
    return {r["judgment__annotator__user_id"]: (r["matched"], r["compared"]) for r in rows}


def people_rows(now=None) -> list[PersonRow]:
    """Every user with role, campaigns, recent throughput (judgments in the last RECENT_DAYS days),
    agreement with final answers and gold accuracy (all campaigns)."""
    now = now or timezone.now()
    since = now - timedelta(days=RECENT_DAYS)
    users = list(get_user_model().objects.prefetch_related("groups").order_by("-is_active", "username"))
    judged = (
        Judgment.objects.filter(kind=LabelKind.HUMAN, annotator__user__isnull=False)
        .values("annotator__user_id")
        .annotate(total=Count("id"), recent=Count("id", filter=Q(created_at__gte=since)))
    )
    counts = {r["annotator__user_id"]: r for r in judged}
    agreement = agreement_by_user()
    campaigns: dict[int, list] = defaultdict(list)
    for m in Membership.objects.filter(active=True).select_related("campaign").order_by("campaign__slug"):
        campaigns[m.user_id].append(m.campaign)
    # Gold accuracy per campaign where the user judged gold items, summed over campaigns.
    gold_pairs = (
        Judgment.objects.filter(item__is_gold=True, annotator__user__isnull=False)
        .values_list("annotator__user_id", "item__campaign_id")
        .distinct()
    )
    campaign_by_id = {c.id: c for c in Campaign.objects.filter(id__in={c for _, c in gold_pairs})}
    gold: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    by_id = {u.id: u for u in users}
    for user_id, campaign_id in gold_pairs:
        share, compared = gold_accuracy(campaign_by_id[campaign_id], by_id[user_id])
        if compared:
            gold[user_id][0] += round((share or 0) * compared)
            gold[user_id][1] += compared
    rows = []
    for user in users:
        c = counts.get(user.id, {})
        matched, compared = agreement.get(user.id, (0, 0))
        g_matched, g_compared = gold.get(user.id, (0, 0))
        rows.append(
            PersonRow(
                user=user,
                role=role_of(user) if user.is_active else _role_ignoring_active(user),
                campaigns=campaigns.get(user.id, []),
                recent=c.get("recent", 0),
                total=c.get("total", 0),
                agreement=matched / compared if compared else None,
                compared=compared,
                gold=g_matched / g_compared if g_compared else None,
                gold_compared=g_compared,
            )
        )
    return rows


def _role_ignoring_active(user) -> Role | None:
    """A deactivated user's role (role_of treats inactive users as having none)."""
    if user.is_superuser:
        return Role.ADMIN
    names = {g.name for g in user.groups.all()}
    held = [role for role in Role if role.value in names]
    from reviews.core.roles import RANK

    return max(held, key=RANK.__getitem__) if held else None


def account_history(limit: int = 20):
    """The latest account changes made here or in the support admin."""
    ct = ContentType.objects.get_for_model(get_user_model())
    return LogEntry.objects.filter(content_type=ct).select_related("user").order_by("-action_time")[:limit]
