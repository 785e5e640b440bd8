from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from reviews.data.backup import dump_campaign

from ._base import get_campaign


class Command(BaseCommand):
    help = "Back up one campaign (rows, feedback log, versions, users by name) to a JSON Lines file (.gz: gzipped)."

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("--out", required=True, help="the file to write (FILE.jsonl or FILE.jsonl.gz)")

    def handle(self, slug, out, **options):
        campaign = get_campaign(slug)
        path = Path(out)
        if not path.parent.is_dir():
            raise CommandError(f"{path.parent} is not a directory")
        counts = dump_campaign(campaign, path)
        total = sum(counts.values())
        events = counts.get("reviews.feedbackevent", 0)
        self.stdout.write(f"{slug}: {total} rows ({events} feedback events) written to {path}")
