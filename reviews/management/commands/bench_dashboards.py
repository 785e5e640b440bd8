import secrets
import statistics
import tempfile
import time
from pathlib import Path

from django.core.management.base import BaseCommand
from django.db import connection, reset_queries
from django.test import Client
from django.test.utils import CaptureQueriesContext, override_settings

from reviews.campaigns.setup import create_campaign
from reviews.core.roles import Role
from reviews.data.importer import import_pool
from reviews.dev.benchmarks import peak_rss_mb, throwaway_database
from reviews.dev.synthetic import BENCH_RUBRIC, write_synthetic
from reviews.models import Judgment
from reviews.monitoring.snapshots import take_snapshot
from reviews.people.accounts import create_user

PAGES = ["", "quality/", "slices/", "slices/?tag=safe", "automated/", "leaderboard/", "scoring/", "series/"]
DOWNLOADS = ["quality/agreement.json", "slices/slices.csv"]


class Command(BaseCommand):
    help = (
        "Benchmark the dashboards: seed a throwaway database of the configured kind with about N judgments "
        "(synthetic pool, two human annotators and an automated judge per labeled item), take a snapshot "
        "and print each dashboard page's render time (median and worst of --repeat requests)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--judgments", type=int, default=100_000)
        parser.add_argument("--repeat", type=int, default=5)
        parser.add_argument("--snapshots", type=int, default=3, help="snapshots taken (the time series' length)")

    def handle(self, judgments, repeat, snapshots, **options):
        labeled_share = 0.67
        # Each labeled synthetic item carries three judgments (two human, one model).
        items = max(10, round(judgments / (3 * labeled_share)))
        with tempfile.TemporaryDirectory(prefix="bench-dashboards-") as tmp, throwaway_database(tmp):
            path = Path(tmp) / "pool.jsonl"
            write_synthetic(path, items, labeled_share=labeled_share)
            campaign = create_campaign("bench", "Dashboard benchmark", BENCH_RUBRIC)
            started = time.perf_counter()
            with open(path, "rb") as stream:
                import_pool(campaign, stream, source_name=path.name)
            n = Judgment.objects.filter(item__campaign=campaign).count()
            self.stdout.write(
                f"{connection.vendor}: seeded {items:,} items, {n:,} judgments in {time.perf_counter() - started:.1f}s"
            )
            for _ in range(snapshots):
                started = time.perf_counter()
                take_snapshot(campaign)
                self.stdout.write(f"snapshot (the scheduled job's work): {time.perf_counter() - started:.2f}s")
            lead = create_user("bench-lead", Role.LEAD, password=secrets.token_urlsafe())
            client = Client()
            client.force_login(lead)
            with override_settings(ALLOWED_HOSTS=["testserver"], DEBUG=False):
                for page in PAGES + DOWNLOADS:
                    url = f"/dashboards/bench/{page}"
                    timings = []
                    for _ in range(repeat):
                        reset_queries()
                        started = time.perf_counter()
                        response = client.get(url)
                        timings.append((time.perf_counter() - started) * 1000)
                        assert response.status_code == 200, (url, response.status_code)
                    verdict = "ok" if statistics.median(timings) < 300 else "SLOW"
                    self.stdout.write(
                        f"  {url:<45} median {statistics.median(timings):7.1f} ms  worst {max(timings):7.1f} ms  "
                        f"{len(response.content) / 1024:7.1f} KB  {verdict}"
                    )
                with CaptureQueriesContext(connection) as captured:
                    client.get("/dashboards/bench/")
                slowest = sorted(captured.captured_queries, key=lambda q: -float(q["time"]))[:3]
                self.stdout.write(f"overview: {len(captured.captured_queries)} queries; slowest:")
                for q in slowest:
                    self.stdout.write(f"  {1000 * float(q['time']):6.1f} ms  {q['sql'][:160]}")
        self.stdout.write(f"peak RSS {peak_rss_mb():.0f} MB")
