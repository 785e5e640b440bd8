"""Users and their roles."""

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction

from reviews.core.roles import Role
from reviews.models import Annotator


def set_role(user, role: Role) -> None:
    """Give a user exactly one role group (admins also get the Django admin's staff flag)."""
    with transaction.atomic():
        user.groups.remove(*Group.objects.filter(name__in=[r.value for r in Role]))
        user.groups.add(Group.objects.get(name=role.value))
        user.is_staff = role == Role.ADMIN
        user.save(update_fields=["is_staff"])


def create_user(username: str, role: Role, *, password: str, email: str = ""):
    with transaction.atomic():
        user = get_user_model().objects.create_user(username=username, email=email, password=password)
        set_role(user, role)
        Annotator.for_user(user)
    return user
