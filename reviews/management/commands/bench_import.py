import tempfile
import time
from pathlib import Path

from django.core.management.base import BaseCommand
from django.db import connection

from reviews.campaigns.setup import create_campaign
from reviews.data.importer import import_pool
from reviews.dev.benchmarks import peak_rss_mb, throwaway_database
from reviews.dev.synthetic import BENCH_RUBRIC, write_synthetic


class Command(BaseCommand):
    help = (
        "Benchmark the pool import: generate a synthetic file of N items (shared prompts, a third "
        "labeled) and import it into a throwaway database of the configured kind; print items/s and memory."
    )

    def add_arguments(self, parser):
        parser.add_argument("--items", type=int, default=100_000)
        parser.add_argument("--labeled-share", type=float, default=0.3)
        parser.add_argument("--keep-file", metavar="PATH", help="write the synthetic file here and keep it")

    def handle(self, items, labeled_share, keep_file, **options):
        with tempfile.TemporaryDirectory(prefix="bench-import-") as tmp:
            path = Path(keep_file or Path(tmp) / "pool.jsonl")
            started = time.perf_counter()
            size = write_synthetic(path, items, labeled_share=labeled_share)
            self.stdout.write(
                f"generated {items} items ({size / 1e6:.1f} MB) in {time.perf_counter() - started:.1f}s: {path}"
            )
            with throwaway_database(tmp):
                campaign = create_campaign("bench", "Import benchmark", BENCH_RUBRIC)
                rss_before = peak_rss_mb()
                started, cpu = time.perf_counter(), time.process_time()
                with open(path, "rb") as stream:
                    report = import_pool(campaign, stream, source_name=path.name)
                elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        self.stdout.write(report.summary())
        self.stdout.write(
            f"{connection.vendor}: {items} items in {elapsed:.2f}s = {items / elapsed:,.0f} items/s "
            f"({report.labels / elapsed:,.0f} labels/s); peak RSS {peak_rss_mb():.0f} MB "
            f"(+{peak_rss_mb() - rss_before:.0f} MB during the import)"
        )
        self.stdout.write(f"CPU time of this process: {cpu:.2f}s ({cpu / elapsed:.0%} of the elapsed time)")
        self.stdout.write(f"time per phase (share of {elapsed:.2f}s):")
        for line in report.phases.lines(elapsed):
            self.stdout.write(line)
        unaccounted = elapsed - report.phases.total()
        self.stdout.write(f"  (outside the phases: {unaccounted:.2f}s)")
