from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from reviews.data.backup import BackupError, restore_campaign


class Command(BaseCommand):
    help = "Restore a campaign from a dump_campaign file, all or nothing (into a database without that campaign)."

    def add_arguments(self, parser):
        parser.add_argument("file")
        parser.add_argument("--slug", help="restore under this slug instead of the dumped one")

    def handle(self, file, slug=None, **options):
        path = Path(file)
        if not path.is_file():
            raise CommandError(f"no file {path}")
        try:
            campaign, counts = restore_campaign(path, slug=slug)
        except BackupError as exc:
            raise CommandError(f"{path}: {exc}") from None
        total = sum(counts.values())
        self.stdout.write(f"{campaign.slug}: {total} rows restored from {path}")
