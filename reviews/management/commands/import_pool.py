import os

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from reviews.core.exceptions import ImportFailed
from reviews.data.importer import import_pool

from ._base import get_campaign

PROGRESS_MIN_LINES = 2000


def count_lines(path: str) -> int:
    with open(path, "rb") as fh:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: fh.read(1 << 20), b""))


class Command(BaseCommand):
    help = (
        "Import a pool file (JSON Lines, FORMATS.md section 1) into a campaign. Every line is "
        "validated; with any error nothing is written and each error is listed with its line number."
    )

    def add_arguments(self, parser):
        parser.add_argument("slug", help="the campaign")
        parser.add_argument("file", metavar="FILE.jsonl")
        parser.add_argument("--no-progress", action="store_true", help="no progress bar")

    def handle(self, slug, file, no_progress, **options):
        campaign = get_campaign(slug)
        if not os.path.isfile(file):
            raise CommandError(f"no such file: {file}")
        bar = None
        if not no_progress and (total := count_lines(file)) > PROGRESS_MIN_LINES:
            bar = tqdm(total=total, unit="lines", file=self.stderr._out, mininterval=0.5)
        try:
            with open(file, "rb") as stream:
                report = import_pool(
                    campaign,
                    stream,
                    source_name=os.path.basename(file),
                    progress=(lambda number, size: bar.update(1)) if bar else None,
                )
        except ImportFailed as exc:
            for message in exc.report.errors:
                self.stderr.write(message)
            if exc.report.error_count > len(exc.report.errors):
                self.stderr.write(f"... and {exc.report.error_count - len(exc.report.errors)} more")
            raise CommandError(f"import failed, nothing written: {exc.report.summary()}") from exc
        finally:
            if bar:
                bar.close()
        self.stdout.write(report.summary())
