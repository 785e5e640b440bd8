import tempfile
import time
from pathlib import Path

import orjson
from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import connection

from reviews.api.ingest import ingest
from reviews.api.tokens import create_token
from reviews.campaigns.setup import create_campaign
from reviews.data.importer import import_pool
from reviews.datasets.export import Filters, create_dataset
from reviews.dev.benchmarks import peak_rss_mb, throwaway_database
from reviews.dev.synthetic import BENCH_RUBRIC, write_synthetic


class Command(BaseCommand):
    help = (
        "Benchmark dataset exports and API ingest on a throwaway database of the configured kind: import N "
        "synthetic items (a third labeled), export full and preference JSONL, then ingest the full export "
        "through the API's ingest function into an empty campaign (JSON list body); print the timings."
    )

    def add_arguments(self, parser):
        parser.add_argument("--items", type=int, default=20_000)

    def handle(self, items, **options):
        with tempfile.TemporaryDirectory(prefix="bench-datasets-") as tmp:
            settings.REVIEWS_DATASET_DIR = Path(tmp) / "datasets"
            path = Path(tmp) / "pool.jsonl"
            write_synthetic(path, items, labeled_share=0.3)
            with throwaway_database(tmp):
                campaign = create_campaign("bench", "Dataset benchmark", BENCH_RUBRIC)
                with open(path, "rb") as stream:
                    import_pool(campaign, stream)
                for fmt in ("full", "preference"):
                    started = time.perf_counter()
                    version = create_dataset(campaign, fmt, Filters())
                    elapsed = time.perf_counter() - started
                    self.stdout.write(
                        f"{connection.vendor}: {fmt} export of {items} items: {version.counts['lines']} lines, "
                        f"{version.size_bytes / 1e6:.1f} MB in {elapsed:.2f}s = {items / elapsed:,.0f} items/s"
                    )
                    if fmt == "full":
                        full = Path(settings.REVIEWS_DATASET_DIR) / f"{version.content_hash}.jsonl"
                body = orjson.dumps([orjson.loads(line) for line in full.read_bytes().splitlines()])
                target = create_campaign("target", "Ingest target", BENCH_RUBRIC)
                token = create_token("bench", [target])[0]
                started = time.perf_counter()
                result = ingest(target, body, "application/json", token=token)
                elapsed = time.perf_counter() - started
                self.stdout.write(
                    f"{connection.vendor}: API ingest of {result.counts['created']} items "
                    f"({len(body) / 1e6:.1f} MB JSON list, {result.counts['labels']} labels) in {elapsed:.2f}s = "
                    f"{items / elapsed:,.0f} items/s; peak RSS {peak_rss_mb():.0f} MB"
                )
