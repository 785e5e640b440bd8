"""The authentication backend: Django's model backend, with the user's roles in the same query."""

import functools

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import Group

from reviews.core.roles import Role


@functools.cache
def _user_sql() -> str:
    """The user row, whether the user is in each role's group, and their annotator id.

    Plain SQL: every request runs it, and building the same query through the ORM cost more
    than a millisecond of CPU per request (the page's whole budget is a few).
    """
    from reviews.models import Annotator  # the backend module loads before the app's models

    user = get_user_model()
    through = user.groups.through._meta
    member = (
        f"EXISTS (SELECT 1 FROM {through.db_table} m JOIN {Group._meta.db_table} g ON g.id = m.group_id "  # noqa: S608
        f"WHERE m.user_id = u.{user._meta.pk.column} AND g.name = %s)"
    )
    flags = ", ".join(f"{member} AS has_role_{role.value}" for role in Role)
    annotator = f"(SELECT a.id FROM {Annotator._meta.db_table} a WHERE a.user_id = u.{user._meta.pk.column})"  # noqa: S608
    return (
        f"SELECT u.*, {flags}, {annotator} AS reviews_annotator_id "  # noqa: S608 - names from _meta
        f"FROM {user._meta.db_table} u WHERE u.{user._meta.pk.column} = %s"
    )


class RoleBackend(ModelBackend):
    """Every request loads its user through `get_user`: with the role groups and the user's
    annotator id in the same query, the role check of the view and the labelers' queue need no
    further query (reviews.core.roles.role_of and reviews.labeling.queue.annotator_id read them)."""

    def get_user(self, user_id):
        params = [role.value for role in Role] + [user_id]
        user = next(iter(get_user_model()._default_manager.raw(_user_sql(), params)), None)
        if user is None:
            return None
        user.role_names = {role.value for role in Role if getattr(user, f"has_role_{role.value}")}
        return user if self.user_can_authenticate(user) else None
