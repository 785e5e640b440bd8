from django.core.management.base import BaseCommand, CommandError

from reviews.models import Campaign
from reviews.people.membership import MembershipError, add_member_by_username, remove_member


class Command(BaseCommand):
    help = "Make an existing user a member of a campaign (or, with --remove, end their membership); recorded."

    def add_arguments(self, parser):
        parser.add_argument("slug", help="the campaign")
        parser.add_argument("username")
        parser.add_argument("--remove", action="store_true", help="end the membership instead")
        parser.add_argument("--note", default="", help="why (kept in the feedback log)")

    def handle(self, slug, username, remove, note, **options):
        campaign = Campaign.objects.filter(slug=slug).first()
        if campaign is None:
            raise CommandError(f"no such campaign: {slug}")
        if remove:
            from django.contrib.auth import get_user_model

            user = get_user_model().objects.filter(username=username).first()
            if user is None:
                raise CommandError(f"There is no user {username!r}.")
            changed = remove_member(campaign, user, note=note)
            self.stdout.write(f"{username} left {slug}" if changed else f"{username} was not a member of {slug}")
            return
        try:
            _, changed = add_member_by_username(campaign, username, note=note)
        except MembershipError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            f"{username} is now a member of {slug}" if changed else f"{username} already is a member of {slug}"
        )
