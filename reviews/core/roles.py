"""Roles are Django groups created by a migration; this module is the only place that names them."""

from django.db import models


class Role(models.TextChoices):
    LABELER = "labeler", "Labeler"
    LEAD = "lead", "Lead"
    ADMIN = "admin", "Admin"


# Each role includes the ones before it.
RANK = {Role.LABELER: 1, Role.LEAD: 2, Role.ADMIN: 3}

ALL_MODELS = (
    "adjudication",
    "apitoken",
    "annotator",
    "answer",
    "assignment",
    "campaign",
    "campaignsettings",
    "datasetversion",
    "escalation",
    "feedbackevent",
    "finalanswer",
    "item",
    "itemscore",
    "judgment",
    "membership",
    "metricsnapshot",
    "prompt",
    "response",
    "rubric",
    "rubricversion",
    "scoringrun",
)

# Permissions each role's group holds (codenames on reviews models).
GROUP_PERMISSIONS = {
    Role.LABELER: ["add_judgment", "view_item", "view_campaign"],
    Role.LEAD: [
        "add_judgment",
        "view_item",
        "view_campaign",
        "view_judgment",
        "add_adjudication",
        "view_adjudication",
        "change_escalation",
        "view_escalation",
        "view_metricsnapshot",
    ],
    Role.ADMIN: [
        "add_judgment",
        "view_item",
        "view_campaign",
        "view_judgment",
        "add_adjudication",
        "view_adjudication",
        "change_escalation",
        "view_escalation",
        "view_metricsnapshot",
        "add_campaign",
        "change_campaign",
        "add_campaignsettings",
        "add_rubric",
        "change_rubric",
        "add_rubricversion",
        "add_item",
        "add_datasetversion",
        "view_datasetversion",
        "add_scoringrun",
        # Admins support everyone: they may look at every table (the Django admin keeps the
        # audit trail and derived data read-only).
        *(f"view_{model}" for model in ALL_MODELS),
    ],
}


def sync_role_groups(group_model, permission_model, *, strict: bool = True) -> None:
    """Create the role groups and give each exactly its permissions (idempotent).

    Run by migration 0002 (with historical models, where later models do not exist yet:
    `strict=False` grants what exists) and after every migrate or test flush (post_migrate,
    strict), so the groups follow this module when it changes.
    """
    for role, codenames in GROUP_PERMISSIONS.items():
        group, _ = group_model.objects.get_or_create(name=role.value)
        wanted = sorted(set(codenames))
        perms = permission_model.objects.filter(content_type__app_label="reviews", codename__in=wanted)
        missing = set(wanted) - set(perms.values_list("codename", flat=True))
        if missing and strict:
            raise RuntimeError(f"permissions missing for role {role}: {sorted(missing)}")
        group.permissions.set(perms)


def role_of(user) -> Role | None:
    """The highest role a user holds; superusers are admins; None for anonymous or no role."""
    if not user.is_authenticated or not user.is_active:
        return None
    if user.is_superuser:
        return Role.ADMIN
    # Loaded with the user by reviews.people.backends.RoleBackend; else one query.
    names = getattr(user, "role_names", None)
    if names is None:
        names = {g.name for g in user.groups.all()}
    held = [role for role in Role if role.value in names]
    return max(held, key=RANK.__getitem__) if held else None


def is_lead(user) -> bool:
    """True for leads and admins (an admin's role includes the lead's)."""
    role = role_of(user)
    return role is not None and RANK[role] >= RANK[Role.LEAD]
