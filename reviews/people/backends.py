"""The authentication backend: Django's model backend, with the user's roles in the same query."""

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import Group
from django.db.models import Exists, OuterRef, Subquery

from reviews.core.roles import Role


def role_flags():
    """Annotations `has_role_<role>`: whether the user is in that role's group (one EXISTS each)."""
    through = get_user_model().groups.through
    return {
        f"has_role_{role.value}": Exists(
            through.objects.filter(user_id=OuterRef("pk"), group__in=Group.objects.filter(name=role.value))
        )
        for role in Role
    }


class RoleBackend(ModelBackend):
    """Every request loads its user through `get_user`: with the role groups and the user's
    annotator id as annotations, the role check of the view and the labelers' queue need no
    further query (reviews.core.roles.role_of and reviews.labeling.queue.annotator_id read them)."""

    def get_user(self, user_id):
        from reviews.models import Annotator  # the backend module loads before the app's models

        annotator = Annotator.objects.filter(user_id=OuterRef("pk")).values("id")[:1]
        users = get_user_model()._default_manager.annotate(**role_flags(), reviews_annotator_id=Subquery(annotator))
        try:
            user = users.get(pk=user_id)
        except get_user_model().DoesNotExist:
            return None
        user.role_names = {role.value for role in Role if getattr(user, f"has_role_{role.value}")}
        return user if self.user_can_authenticate(user) else None
