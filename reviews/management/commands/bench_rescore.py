import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import connection, transaction

from reviews.campaigns.setup import create_campaign
from reviews.core import sql
from reviews.data.importer import import_pool
from reviews.dev.benchmarks import peak_rss_mb, throwaway_database
from reviews.dev.embedded_redis import EmbeddedRedis
from reviews.dev.synthetic import BENCH_RUBRIC, write_synthetic
from reviews.management.commands.bench_queue import database_url
from reviews.models import ItemScore, Response, ScoringRun
from scoring.jobs import rescore_in_foreground
from scoring.runs import request_rescore


class Command(BaseCommand):
    help = (
        "Benchmark rescoring: a synthetic campaign of N items (a share labeled) in a throwaway database; "
        "prints compute-only and end-to-end items/s, and the time of one bare bulk UPDATE of as many score rows."
    )

    def add_arguments(self, parser):
        parser.add_argument("--items", type=int, default=200_000)
        parser.add_argument("--labeled-share", type=float, default=0.1)
        parser.add_argument("--budget", type=int, default=20_000, help="judgments left in the budget")
        parser.add_argument(
            "--guardrail-share",
            type=float,
            default=1.0,
            help="share of items with an automated compliance label per response (the evidence path)",
        )
        parser.add_argument(
            "--workers",
            type=int,
            default=0,
            help="also time runs split into chunk jobs over this many rqworker processes (REDIS_URL, or an "
            "embedded Redis)",
        )

    def handle(self, items, labeled_share, budget, guardrail_share, workers, **options):
        out = self.stdout
        with tempfile.TemporaryDirectory(prefix="bench-rescore-") as tmp, throwaway_database(tmp):
            path = f"{tmp}/pool.jsonl"
            write_synthetic(path, items, labeled_share=labeled_share, guardrail_share=guardrail_share)
            campaign = create_campaign("bench", "Rescoring benchmark", BENCH_RUBRIC)
            with open(path, "rb") as stream:
                import_pool(campaign, stream)
            campaign.update_settings(budget_total=budget, note="benchmark budget")
            out.write(
                f"{connection.vendor}: {items} items, {labeled_share:.0%} labeled, {guardrail_share:.0%} with "
                f"guardrail labels, budget {budget} judgments"
            )

            first = self._run(campaign)
            out.write(
                f"first run (computes and stores text features): {first.timings} "
                f"= {items / sum(first.timings.values()):,.0f} items/s"
            )
            texts = campaign.prompts.count() + Response.objects.filter(prompt__campaign=campaign).count()
            feature_seconds = first.timings["features"]
            out.write(
                f"feature pass: {texts} texts in {feature_seconds:.1f}s = {items / feature_seconds:,.0f} items/s, "
                f"{texts / feature_seconds:,.0f} texts/s"
            )
            rss_before = peak_rss_mb()
            started = time.perf_counter()
            second = self._run(campaign)
            end_to_end = time.perf_counter() - started
            out.write(
                f"end-to-end run (reads stored features): {end_to_end:.2f}s = {items / end_to_end:,.0f} items/s; "
                f"phases {second.timings}"
            )
            out.write(
                f"risk model: {second.model_versions['risk'].get('skipped') or 'trained'}; "
                f"reward model: {second.model_versions['reward'].get('skipped') or 'trained'}; "
                f"selected {second.metrics['selected']} ({second.metrics['audit']} audit)"
            )

            compute = second.metrics["compute_seconds"]
            out.write(
                f"compute only (time inside the pure scoring functions in that run): {compute:.2f}s "
                f"= {items / compute:,.0f} items/s"
            )
            bare = self._bare_update(second)
            out.write(f"bare bulk UPDATE of {items} score rows: {bare:.2f}s")
            out.write(
                f"end-to-end / bare write = {end_to_end / bare:.2f}x; peak RSS {peak_rss_mb():.0f} MB "
                f"(before the timed run {rss_before:.0f} MB)"
            )
            if workers:
                self._split_runs(campaign, tmp, items, workers)

    def _split_runs(self, campaign, tmp: str, items: int, workers: int) -> None:
        """The same runs as chunk jobs over `workers` rqworker processes: with the text features to
        compute again (a first run), then with them stored."""
        url = os.environ.get("REDIS_URL")
        embedded = None if url else EmbeddedRedis(Path(tmp) / "redis.sock", directory=tmp)
        if embedded is not None:
            url = embedded.start().url
        previous = settings.RQ_QUEUES["default"]["URL"]
        settings.RQ_QUEUES["default"]["URL"] = url
        chunk = max(1000, items // (2 * workers))
        env = {
            **os.environ,
            "DATABASE_URL": database_url(),
            "REDIS_URL": url,
            "SCORING_SPLIT_MIN_ITEMS": "0",
            "SCORING_SPLIT_CHUNK_ITEMS": str(chunk),
        }
        procs = [
            subprocess.Popen(
                [sys.executable, "manage.py", "rqworker", "default"],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for _ in range(workers)
        ]
        try:
            campaign.prompts.update(features_version=0)
            Response.objects.filter(prompt__campaign=campaign).update(features_version=0)
            for label in ("first run (features computed again)", "run with stored features"):
                started = time.perf_counter()
                run = request_rescore(campaign, "benchmark (split)").run
                while run.status not in (ScoringRun.Status.SUCCEEDED, ScoringRun.Status.FAILED):
                    time.sleep(0.2)
                    run.refresh_from_db()
                wall = time.perf_counter() - started
                self.stdout.write(
                    f"split over {workers} workers, chunks of {chunk} items, {label}: {run.status} in {wall:.2f}s "
                    f"= {items / wall:,.0f} items/s; phases {run.timings}"
                    + (f"; error {run.error}" if run.error else "")
                )
        finally:
            for proc in procs:
                proc.send_signal(signal.SIGTERM)
            for proc in procs:
                proc.wait(timeout=60)
            settings.RQ_QUEUES["default"]["URL"] = previous
            if embedded is not None:
                embedded.stop()

    def _run(self, campaign) -> ScoringRun:
        return rescore_in_foreground(campaign, "benchmark")

    def _bare_update(self, run) -> float:
        ids = list(ItemScore.objects.filter(run=run).values_list("id", flat=True))
        rows = [(0.5, 0.5, 0.5, 1.5, pk) for pk in ids]
        started = time.perf_counter()
        with transaction.atomic():
            sql.update_rows(ItemScore, ["risk", "uncertainty", "diversity", "utility"], rows)
        return time.perf_counter() - started
