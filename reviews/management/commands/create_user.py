import getpass
import os
import sys

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from reviews.accounts import create_user
from reviews.roles import Role


class Command(BaseCommand):
    help = "Create a user with a role; the password comes from REVIEWS_PASSWORD, else it is asked for."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--role", required=True, choices=[r.value for r in Role])
        parser.add_argument("--email", default="")

    def handle(self, username, role, email, **options):
        if get_user_model().objects.filter(username=username).exists():
            raise CommandError(f"user {username!r} already exists")
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
        create_user(username, Role(role), password=password, email=email)
        self.stdout.write(f"created {role} {username}")
