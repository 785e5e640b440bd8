"""Shared building blocks for models that must not change once written."""

from django.db import models

from reviews.core.exceptions import ImmutableError


class AppendOnlyQuerySet(models.QuerySet):
    """Bulk updates and deletes are refused: rows of this table are written once."""

    def update(self, **kwargs):
        raise ImmutableError(f"{self.model.__name__} rows cannot be updated")

    def delete(self):
        raise ImmutableError(f"{self.model.__name__} rows cannot be deleted")


class AppendOnlyModel(models.Model):
    """A model whose rows are inserted once and never updated or deleted through the ORM."""

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise ImmutableError(f"{type(self).__name__} rows cannot be updated")
        kwargs["force_insert"] = True
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ImmutableError(f"{type(self).__name__} rows cannot be deleted")
