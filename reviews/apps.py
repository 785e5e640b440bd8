from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _sync_role_groups(sender, **kwargs):
    from django.contrib.auth.models import Group, Permission

    from reviews.core.roles import sync_role_groups

    sync_role_groups(Group, Permission)


class ReviewsConfig(AppConfig):
    name = "reviews"
    verbose_name = "Review desk"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        # Also after a test flush, which empties the groups that migration 0002 created.
        post_migrate.connect(_sync_role_groups, sender=self)
