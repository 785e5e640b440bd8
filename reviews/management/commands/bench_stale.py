import io
import tempfile
import time

import orjson
from django.core.management.base import BaseCommand
from django.db import connection

from reviews.campaigns.setup import create_campaign
from reviews.data.importer import import_pool
from reviews.dev.benchmarks import throwaway_database
from reviews.rubrics import editor

RUBRIC = {
    "slug": "bench-stale",
    "title": "Stale-list benchmark",
    "guidelines": "v1",
    "criteria": [{"slug": "preference", "kind": "pairwise", "allow_tie": True, "question": "Which is better?"}],
}


def _pool(items: int, resolved_share: float) -> bytes:
    """Items with two agreeing imported human votes (resolved under v1) for `resolved_share` of them."""
    lines = []
    resolved = int(items * resolved_share)
    for n in range(items):
        line = {
            "external_id": f"i{n}",
            "prompt": f"Prompt {n}",
            "responses": [{"key": "a", "model": "m-a", "text": f"A{n}"}, {"key": "b", "model": "m-b", "text": f"B{n}"}],
        }
        if n < resolved:
            line["labels"] = [
                {"annotator": f"ext:{who}", "kind": "human", "criterion": "preference", "value": "a"} for who in (1, 2)
            ]
        lines.append(orjson.dumps(line))
    return b"\n".join(lines) + b"\n"


class Command(BaseCommand):
    help = (
        "Benchmark the rubric publish path on a throwaway database of the configured kind: import N items "
        "(a share resolved under v1), publish v2, and time the publish, the stale list and its re-queue."
    )

    def add_arguments(self, parser):
        parser.add_argument("--items", type=int, default=20_000)
        parser.add_argument("--resolved-share", type=float, default=0.5)

    def handle(self, items, resolved_share, **options):
        # Loaded once per process (scikit-learn takes seconds); web and worker processes already have it.
        import scoring.jobs  # noqa: F401

        body = _pool(items, resolved_share)
        with tempfile.TemporaryDirectory(prefix="bench-stale-") as tmp, throwaway_database(tmp):
            campaign = create_campaign("bench-stale", "Stale-list benchmark", RUBRIC)
            started = time.perf_counter()
            import_pool(campaign, io.BytesIO(body))
            self.stdout.write(f"imported {items} items in {time.perf_counter() - started:.1f}s")
            draft = editor.create_draft(campaign.rubric, user=None)
            editor.update_draft(draft, {**RUBRIC, "guidelines": "v2"})
            timings = {}
            started = time.perf_counter()
            published = editor.publish_draft(draft, user=None, note="benchmark")
            timings["publish (stale count included)"] = time.perf_counter() - started
            version = published.version
            started = time.perf_counter()
            ids = editor.stale_item_ids(campaign, version)
            stale = len(ids)
            timings["stale list"] = time.perf_counter() - started
            started = time.perf_counter()
            shown = len(editor.stale_items_page(ids))
            timings["first 200 of the stale list"] = time.perf_counter() - started
            started = time.perf_counter()
            requeued = editor.requeue_stale(campaign, version, user=None)
            timings["re-queue the stale list"] = time.perf_counter() - started
        self.stdout.write(f"{connection.vendor}: {items} items, {stale} stale ({shown} shown), {requeued} re-queued")
        for name, seconds in timings.items():
            self.stdout.write(f"  {name}: {seconds * 1000:,.0f} ms")
