from django.core.management.base import BaseCommand, CommandError

from reviews.campaigns.setup import attach_rubric, load_json_file
from reviews.core.exceptions import DomainError

from ._base import get_campaign


class Command(BaseCommand):
    help = "Publish a rubric definition (FORMATS.md section 2) as a new version for a campaign."

    def add_arguments(self, parser):
        parser.add_argument("slug", help="the campaign")
        parser.add_argument("file", metavar="FILE.json")
        parser.add_argument("--note", default="", help="change note for the new version")

    def handle(self, slug, file, note, **options):
        campaign = get_campaign(slug)
        try:
            version, created = attach_rubric(campaign, load_json_file(file), note=note)
        except DomainError as exc:
            raise CommandError(str(exc)) from exc
        verb = "published" if created else "unchanged:"
        self.stdout.write(f"{verb} rubric {version.rubric.slug} v{version.number} for campaign {campaign.slug}")
