"""API tokens: per-client bearer secrets, shown once and stored only as their SHA-256."""

import hashlib
import logging
import secrets

from django.db import transaction
from django.utils import timezone

from reviews.core.exceptions import DomainError
from reviews.models import ApiToken, Campaign

logger = logging.getLogger(__name__)

# A recognisable prefix lets secret scanners (and people) tell our tokens apart.
SECRET_PREFIX = "rdk_"  # noqa: S105 - a public marker, not a secret
PREFIX_LENGTH = 12
MAX_NAME_LENGTH = 200


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_token(name: str, campaigns, *, user=None) -> tuple[ApiToken, str]:
    """A new token for these campaigns; returns (token, secret). The secret is never stored."""
    name = (name or "").strip()
    if not name:
        raise DomainError("Give the token a name that says which client uses it.")
    if len(name) > MAX_NAME_LENGTH:
        raise DomainError(f"The name is longer than {MAX_NAME_LENGTH} characters.")
    campaigns = list(campaigns)
    if not campaigns:
        raise DomainError("Grant the token at least one campaign.")
    if ApiToken.objects.filter(name=name, revoked_at__isnull=True).exists():
        raise DomainError(f"An active token is already named {name!r}; pick another name or revoke it first.")
    secret = SECRET_PREFIX + secrets.token_urlsafe(32)
    with transaction.atomic():
        token = ApiToken.objects.create(
            name=name, prefix=secret[:PREFIX_LENGTH], key_hash=hash_secret(secret), created_by=user
        )
        token.campaigns.set(campaigns)
    logger.info("API token %s (%s) created by %s", token.pk, name, getattr(user, "username", None))
    return token, secret


def revoke_token(token: ApiToken, *, user=None) -> ApiToken:
    """Revoke a token for good; revoking a revoked token changes nothing."""
    updated = ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
    token.refresh_from_db()
    if updated:
        logger.info("API token %s (%s) revoked by %s", token.pk, token.name, getattr(user, "username", None))
    return token


def authenticate(secret: str | None) -> ApiToken | None:
    """The active token whose secret this is, or None (unknown or revoked)."""
    if not secret:
        return None
    token = ApiToken.objects.filter(key_hash=hash_secret(secret)).first()
    if token is None or not token.is_active:
        return None
    return token


def grants(token: ApiToken, campaign: Campaign) -> bool:
    return token.campaigns.filter(pk=campaign.pk).exists()


def mark_used(token: ApiToken) -> None:
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=timezone.now())
