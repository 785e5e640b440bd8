import tempfile
import time
from collections import Counter

from django.core.management.base import BaseCommand
from django.db import connection

from reviews.campaigns.setup import create_campaign
from reviews.data.importer import import_pool
from reviews.dev.benchmarks import peak_rss_mb, throwaway_database
from reviews.dev.synthetic import BENCH_RUBRIC, write_synthetic
from reviews.leads import escalation


class Command(BaseCommand):
    help = (
        "Benchmark the escalation rules over a whole pool (what runs after each scoring run): a synthetic "
        "campaign of N items in a throwaway database; prints the time to evaluate the rules and to open the "
        "escalations, and how many fired per rule."
    )

    def add_arguments(self, parser):
        parser.add_argument("--items", type=int, default=100_000)
        parser.add_argument("--labeled-share", type=float, default=0.3)
        parser.add_argument("--tau-risk", type=float, default=0.4, help="low enough for the synthetic priors")

    def handle(self, items, labeled_share, tau_risk, **options):
        out = self.stdout
        with tempfile.TemporaryDirectory(prefix="bench-escalation-") as tmp, throwaway_database(tmp):
            path = f"{tmp}/pool.jsonl"
            write_synthetic(path, items, labeled_share=labeled_share)
            campaign = create_campaign("bench", "Escalation benchmark", BENCH_RUBRIC)
            with open(path, "rb") as stream:
                import_pool(campaign, stream)
            campaign.update_settings(tau_risk=tau_risk, note="benchmark thresholds")
            out.write(f"{connection.vendor}: {items} items, {labeled_share:.0%} labeled, τ_risk {tau_risk}")

            started = time.perf_counter()
            decided = escalation.evaluate(campaign)
            evaluate = time.perf_counter() - started
            rules = Counter(r["rule"] for fired, _ in decided.values() for r in fired)
            out.write(f"evaluate (read only): {evaluate:.2f}s = {items / evaluate:,.0f} items/s; fired {dict(rules)}")

            started = time.perf_counter()
            opened = escalation.run_rules(campaign, trigger="benchmark")
            write = time.perf_counter() - started
            out.write(f"run_rules (evaluate + open {len(opened)} escalations): {write:.2f}s")

            started = time.perf_counter()
            again = escalation.run_rules(campaign, trigger="benchmark again")
            repeat = time.perf_counter() - started
            out.write(f"second pass (everything already escalated): {repeat:.2f}s, opened {len(again)}")
            out.write(f"peak RSS {peak_rss_mb():.0f} MB")
