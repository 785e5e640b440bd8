import getpass
import os
import sys

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from reviews.core.roles import Role
from reviews.models import Campaign
from reviews.people.accounts import create_user
from reviews.people.membership import add_member


class Command(BaseCommand):
    help = "Create a user with a role; the password comes from REVIEWS_PASSWORD, else it is asked for."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--role", required=True, choices=[r.value for r in Role])
        parser.add_argument("--email", default="")
        parser.add_argument(
            "--campaign",
            action="append",
            default=[],
            metavar="SLUG",
            help="make the user a member of this campaign (repeatable)",
        )

    def handle(self, username, role, email, campaign, **options):
        if get_user_model().objects.filter(username=username).exists():
            raise CommandError(f"user {username!r} already exists")
        slugs = list(dict.fromkeys(campaign))
        campaigns = {c.slug: c for c in Campaign.objects.filter(slug__in=slugs)}
        if missing := [slug for slug in slugs if slug not in campaigns]:
            raise CommandError(f"no such campaign: {', '.join(missing)}")
        password = os.environ.get("REVIEWS_PASSWORD")
        if not password:
            if not sys.stdin.isatty():
                raise CommandError("no password: set REVIEWS_PASSWORD or run in a terminal")
            password = getpass.getpass("Password: ")
            if password != getpass.getpass("Password (again): "):
                raise CommandError("the passwords differ")
        try:
            validate_password(password, get_user_model()(username=username, email=email))
        except ValidationError as exc:
            raise CommandError("password refused: " + " ".join(exc.messages)) from exc
        with transaction.atomic():
            user = create_user(username, Role(role), password=password, email=email)
            for slug in slugs:
                add_member(campaigns[slug], user, note="create_user --campaign")
        self.stdout.write(f"created {role} {username}")
        for slug in slugs:
            self.stdout.write(f"{username} is a member of {slug}")
