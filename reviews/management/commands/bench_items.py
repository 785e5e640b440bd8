import random
import secrets
import statistics
import tempfile
import time
from pathlib import Path

from django.core.management.base import BaseCommand
from django.db import connection
from django.http import QueryDict
from django.test import Client
from django.test.utils import override_settings

from reviews.campaigns.setup import create_campaign
from reviews.core.roles import Role
from reviews.data.importer import import_pool
from reviews.data.item_browser import ItemFilter, facets, filtered_items, page
from reviews.dev.benchmarks import throwaway_database
from reviews.dev.synthetic import BENCH_RUBRIC, write_synthetic
from reviews.models import Item, ItemScore, Judgment, LabelKind, ScoringRun
from reviews.people.accounts import create_user

RARE = "sourdough"


class Command(BaseCommand):
    help = (
        "Benchmark the item browser: a synthetic pool of N items (two thirds labeled by two human "
        "annotators and a judge: ~2 judgments per item) with scores of one run, in a throwaway database of "
        "the configured kind; prints the p50 of full page renders (first page, filtered pages, searches, "
        "page 1,000)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--items", type=int, default=100_000)
        parser.add_argument("--labeled-share", type=float, default=0.67)
        parser.add_argument("--repeat", type=int, default=15, help="renders per case (the p50 is printed)")

    def handle(self, items, labeled_share, repeat, **options):
        with tempfile.TemporaryDirectory(prefix="bench-items-") as tmp:
            path = Path(tmp) / "pool.jsonl"
            write_synthetic(path, items, labeled_share=labeled_share)
            with throwaway_database(tmp):
                started = time.perf_counter()
                campaign = create_campaign("bench", "Item browser benchmark", BENCH_RUBRIC)
                with open(path, "rb") as stream:
                    import_pool(campaign, stream, source_name=path.name)
                self._seed(campaign)
                self.stdout.write(f"set up in {time.perf_counter() - started:.0f}s")
                self._measure(campaign, repeat)

    def _seed(self, campaign):
        """A few items a rare search word finds, and utility terms of one run for every item."""
        ids = list(Item.objects.filter(campaign=campaign).order_by("?").values_list("id", "prompt_id")[:5])
        from reviews.models import Prompt

        for _, prompt_id in ids:
            prompt = Prompt.objects.get(id=prompt_id)
            Prompt.objects.filter(id=prompt_id).update(text=prompt.text + f" {RARE} bread")
        rng = random.Random(0)
        run = ScoringRun.objects.create(campaign=campaign, status=ScoringRun.Status.SUCCEEDED)
        rows = []
        for item_id in Item.objects.filter(campaign=campaign).values_list("id", flat=True).iterator():
            r, h, d = rng.random(), rng.random(), rng.random()
            rows.append(ItemScore(run=run, item_id=item_id, risk=r, uncertainty=h, diversity=d, utility=r + h + d))
        ItemScore.objects.bulk_create(rows, batch_size=5000)
        campaign.scoring_run = run
        campaign.save(update_fields=["scoring_run"])
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE")
        items = Item.objects.filter(campaign=campaign).count()
        judgments = Judgment.objects.filter(item__campaign=campaign).count()
        human = Judgment.objects.filter(item__campaign=campaign, kind=LabelKind.HUMAN).count()
        self.stdout.write(f"{connection.vendor}: {items} items, {judgments} judgments ({human} human), 1 scoring run")

    def _measure(self, campaign, repeat):
        lead = create_user("bench-lead", Role.LEAD, password=secrets.token_urlsafe(16))
        client = Client()
        client.force_login(lead)
        url = f"/campaigns/{campaign.slug}/items/"
        # The cursor of page 1,000 (50 rows a page), found once with OFFSET: the page itself uses none.
        position = min(50 * 999, Item.objects.filter(campaign=campaign).count() - 1) - 1
        newest = filtered_items(campaign, ItemFilter()).order_by("-id").values_list("id", flat=True)
        thousandth = newest[position]
        by_utility = filtered_items(campaign, ItemFilter(sort="-utility")).order_by("-sort_utility", "-id")
        u_row = by_utility.values_list("sort_utility", "id")[position]
        cases = [
            ("first page (newest first)", ""),
            ("page 1,000 (newest first)", f"after={thousandth}~{thousandth}"),
            ("first page by utility", "sort=-utility"),
            ("page 1,000 by utility", f"sort=-utility&after={u_row[0]!r}~{u_row[1]}"),
            ("filtered: status resolved + model", "status=resolved&model=cirrus-70b"),
            ("filtered: tag unsafe, risk >= 0.8, by risk", "tag=unsafe&risk_min=0.8&sort=-risk"),
            ("filtered: has disagreement", "disagreement=1"),
            ("filtered: labeled by an annotator", "labeled_by=syn:annotator_1&status=resolved"),
            (f"search: rare word ({RARE})", f"q={RARE}"),
            ("search: common word (policy)", "q=policy"),
            ("search + filter", f"q={RARE}&tag=synthetic"),
        ]
        started = time.perf_counter()
        for _ in range(repeat):
            facets(campaign)
        self.stdout.write(f"filter choices (facets): {(time.perf_counter() - started) * 1000 / repeat:.1f} ms mean")
        self.stdout.write(f"{'case':<45} {'p50 ms':>8} {'min ms':>8} {'max ms':>8} {'query':>8}  rows")
        with override_settings(DEBUG=False, ALLOWED_HOSTS=["testserver"]):
            for label, query in cases:
                timings = []
                for _ in range(repeat):
                    started = time.perf_counter()
                    response = client.get(f"{url}?{query}" if query else url)
                    timings.append((time.perf_counter() - started) * 1000)
                    assert response.status_code == 200, response.status_code
                rows = response.content.count(b"<tr data-item=")
                params = QueryDict(query)
                query_timings = []
                for _ in range(repeat):
                    started = time.perf_counter()
                    page(campaign, ItemFilter.from_params(params), after=params.get("after"))
                    query_timings.append((time.perf_counter() - started) * 1000)
                self.stdout.write(
                    f"{label:<45} {statistics.median(timings):8.1f} {min(timings):8.1f} {max(timings):8.1f} "
                    f"{statistics.median(query_timings):8.1f}  {rows}"
                )
