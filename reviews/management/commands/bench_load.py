"""Load test: bench_queue's simulated labelers (paced, with think time) plus leads reading the campaign's pages,
with rescoring running (a real Redis and RQ worker) the whole time. Traffic goes only to 127.0.0.1.

Everything bench_queue checks (no errors, no duplicated or lost judgments, overlap never exceeded,
p50/p95/p99 of next and submit) is checked here too; this adds the leads' p50/p99 and 5xx count and the
rescoring runs that completed during the load.
"""

import multiprocessing
import random
import shutil
import subprocess
import sys
import tempfile
import time
from http.client import HTTPException
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.core.management.base import CommandError

from reviews.core.roles import Role
from reviews.dev.embedded_redis import EmbeddedRedis
from reviews.management.commands import bench_queue
from reviews.management.commands.bench_queue import HOST, PASSWORD, SLUG, Browser, percentile, sign_in
from reviews.management.commands.run_desk import Child, stop_child
from reviews.models import Campaign, ScoringRun
from reviews.people.accounts import create_user

LEAD_PAGES = ["/campaigns/", f"/campaigns/{SLUG}/"]


def run_leads(port: int, usernames: list[str], duration: float, think: float, pipe) -> None:
    """The leads, in a forked process: sign in, then open their pages with think time until the end."""
    latencies: dict[str, list[float]] = {path: [] for path in LEAD_PAGES}
    errors: dict[str, int] = {}
    rng = random.Random(7)
    browsers = []
    for name in usernames:
        browser = Browser(port)
        sign_in(browser, name)
        browsers.append(browser)
    end = time.monotonic() + duration
    while time.monotonic() < end:
        for browser in browsers:
            path = rng.choice(LEAD_PAGES)
            started = time.perf_counter()
            try:
                status, _, _ = browser.request("GET", path)
            except (OSError, HTTPException) as exc:
                errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
                continue
            if status != 200:
                errors[f"HTTP {status}"] = errors.get(f"HTTP {status}", 0) + 1
            else:
                latencies[path].append((time.perf_counter() - started) * 1000)
        time.sleep(think * rng.uniform(0.5, 1.5))
    pipe.send((latencies, errors))
    pipe.close()


class Command(bench_queue.Command):
    help = (
        "Load test on 127.0.0.1: N labelers (default 50, paced with think time) and leads (default 2) against "
        "gunicorn for a duration (default 300 s, at most 300) with rescoring running on a real Redis and RQ "
        "worker; prints p50/p99 per endpoint and fails on any 5xx, duplicated or lost judgment or overlap excess."
    )

    def add_arguments(self, parser):
        super().add_arguments(parser)
        # A paced load test: no floor (a closed loop), one server for the whole run.
        parser.set_defaults(items=20_000, labelers=50, mode="paced", floor="skip", duration=300.0, pace=5.0, workers=4)
        parser.add_argument("--leads", type=int, default=2, help="leads reading the campaign pages")
        parser.add_argument("--rescore-every", type=int, default=100, help="judgments between rescoring requests")

    def handle(self, *args, leads, rescore_every, **options):
        if not 0 <= leads <= 20:
            raise CommandError("--leads must be between 0 and 20")
        if options["floor"] != "skip":
            raise CommandError("bench_load measures no floor: use bench_queue --floor")
        self.leads, self.rescore_every = leads, rescore_every
        self.redis: EmbeddedRedis | None = None
        self.worker: Child | None = None
        self.redis_dir = Path(tempfile.mkdtemp(prefix="bl-", dir="/tmp"))  # a short path for the socket
        try:
            super().handle(*args, **options)
        finally:
            self._stop_rescoring()
            shutil.rmtree(self.redis_dir, ignore_errors=True)

    def _set_up(self, tmp, items, labelers):
        k = super()._set_up(tmp, items, labelers)
        campaign = Campaign.objects.get(slug=SLUG)
        campaign.update_settings(user=None, note="bench_load", rescore_every=self.rescore_every)
        users = [create_user(f"lead-{n:02d}", Role.LEAD, password=None) for n in range(self.leads)]
        get_user_model().objects.filter(pk__in=[u.pk for u in users]).update(password=make_password(PASSWORD))
        return k

    def _server_env(self, tmp):
        env = super()._server_env(tmp)
        env["REDIS_URL"] = self.redis.url
        return env

    def _start_server(self, tmp, port, workers, threads, **options):
        self.redis = EmbeddedRedis(self.redis_dir / "redis.sock", directory=self.redis_dir).start()
        env = self._server_env(tmp)
        log = open(Path(tmp) / "worker.log", "wb")  # noqa: SIM115 - the child writes it until stopped
        process = subprocess.Popen(
            [sys.executable, "manage.py", "rqworker", "default"],
            env=env,
            cwd=settings.BASE_DIR,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        self.worker = Child("rq worker", process)
        self.stdout.write(
            f"rescoring: Redis {self.redis.url}, one RQ worker, a run every {self.rescore_every} judgments"
        )
        return super()._start_server(tmp, port, workers, threads, **options)

    def _drive(self, port, labelers, modes, duration, pace, k):
        self.requested_before = ScoringRun.objects.count()
        context = multiprocessing.get_context("fork")
        receive, send = context.Pipe(duplex=False)
        usernames = [f"lead-{n:02d}" for n in range(self.leads)]
        leads = context.Process(target=run_leads, args=(port, usernames, duration, 2.0, send), daemon=True)
        leads.start()
        send.close()
        try:
            rows = super()._drive(port, labelers, modes, duration, pace, k)
            if not receive.poll(120):
                raise CommandError("the leads' process did not finish")
            self.lead_latencies, self.lead_errors = receive.recv()
        finally:
            if leads.is_alive():
                leads.terminate()
            leads.join(5)
        # Let the worker finish the run in progress, then stop it before the database goes.
        deadline = time.monotonic() + 120
        while ScoringRun.objects.filter(status__in=["queued", "running"]).exists() and time.monotonic() < deadline:
            time.sleep(1)
        self.runs = dict(
            (status, ScoringRun.objects.filter(status=status).count()) for status in ("succeeded", "failed", "queued")
        )
        self._stop_rescoring()
        return rows

    def _stop_rescoring(self):
        if self.worker is not None:
            stop_child(self.worker, 15)
            self.worker = None
        if self.redis is not None:
            self.redis.stop()
            self.redis = None

    def _report(self, rows, items, labelers, workers, threads, duration, pace):
        out = self.stdout
        out.write("")
        out.write(f"leads: {self.leads} on {HOST}, think time ~2s")
        out.write(f"{'endpoint':<28} {'requests':>8} {'p50 ms':>8} {'p99 ms':>8}")
        for path, values in self.lead_latencies.items():
            if values:
                out.write(f"{path:<28} {len(values):>8} {percentile(values, 50):>8.0f} {percentile(values, 99):>8.0f}")
        out.write(f"lead errors: {self.lead_errors or 'none'}")
        out.write(
            f"rescoring runs during the load: {self.runs['succeeded']} succeeded, {self.runs['failed']} failed, "
            f"{self.runs['queued']} still queued"
        )
        super()._report(rows, items, labelers, workers, threads, duration, pace)
        if self.lead_errors:
            raise CommandError(f"the leads' requests failed: {self.lead_errors}")
        if self.runs["failed"]:
            raise CommandError(f"{self.runs['failed']} rescoring run(s) failed during the load")
