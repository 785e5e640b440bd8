from django.core.management.base import BaseCommand, CommandError
from django.utils.text import slugify

from reviews.campaigns.setup import create_campaign, load_json_file
from reviews.core.exceptions import DomainError


class Command(BaseCommand):
    help = "Create a campaign with default settings and, optionally, a rubric (FORMATS.md section 2)."

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("--title", required=True)
        parser.add_argument("--rubric", metavar="FILE.json", help="rubric definition to publish for the campaign")

    def handle(self, slug, title, rubric, **options):
        if slugify(slug) != slug:
            raise CommandError(f"{slug!r} is not a slug (lowercase letters, digits, - and _)")
        try:
            definition = load_json_file(rubric) if rubric else None
            campaign = create_campaign(slug, title, definition)
        except DomainError as exc:
            raise CommandError(str(exc)) from exc
        version = campaign.rubric_version()
        self.stdout.write(
            f"created campaign {campaign.slug}"
            + (f" with rubric {campaign.rubric.slug} v{version.number}" if version else " (no rubric yet)")
        )
