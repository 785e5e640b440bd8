"""Benchmark the labelers' queue end to end: gunicorn serving simulated labelers over HTTP on 127.0.0.1.

A separate client process (forked, standard library only: http.client over one thread per
labeler) signs each labeler in and then loops like a browser: GET the work page ("next item"),
read the lease's form, POST a judgment ("submit"; its redirect is the next loop's GET).
"""

import base64
import contextlib
import json
import math
import multiprocessing
import os
import random
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from dataclasses import dataclass, field
from http.client import HTTPConnection, HTTPException
from http.cookies import CookieError, SimpleCookie
from pathlib import Path
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, connections
from django.db.models import Count, Q
from django.utils import timezone

from reviews.campaigns.setup import create_campaign
from reviews.core.roles import Role
from reviews.data.importer import import_pool
from reviews.dev.benchmarks import throwaway_database
from reviews.dev.synthetic import BENCH_RUBRIC, write_synthetic
from reviews.management.commands.run_desk import Child, stop_child
from reviews.models import Assignment, Judgment, LabelKind, Membership, Source
from reviews.people.accounts import create_user

HOST = "127.0.0.1"
SLUG = "bench"
PASSWORD = "bench-queue-password-0123"  # noqa: S105 - throwaway accounts in a throwaway database
MAX_DURATION = 300
MAX_LABELERS = 256
MAX_CYCLES_PER_LABELER = 20_000
REQUEST_TIMEOUT = 30
READY_TIMEOUT = 60
# The client process gets this long beyond the run's duration before it is stopped.
CLIENT_GRACE = 120
SUCCESS = 25  # django.contrib.messages.SUCCESS: the level of "Judgment saved."

FORM_RE = re.compile(r'<form id="judgment-form"[^>]*\baction="([^"]+)"[^>]*>(.*?)</form>', re.S)
INPUT_RE = re.compile(r"<input\b[^>]*>")
ATTR_RE = re.compile(r'\b(type|name|value)="([^"]*)"')
CSRF_RE = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
LEASE_RE = re.compile(r"/leases/([0-9a-f-]{36})/submit")


# -- the client process ----------------------------------------------------------------------


class Browser:
    """One labeler's HTTP session: a connection (kept alive when the server allows) and a cookie jar."""

    def __init__(self, port: int, cookies: dict[str, str] | None = None):
        self.port = port
        self.cookies = dict(cookies or {})
        self.conn: HTTPConnection | None = None

    def request(self, method: str, path: str, form: dict | None = None) -> tuple[int, dict, str]:
        headers = {"Host": f"{HOST}:{self.port}", "Accept": "text/html"}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        body = None
        if form is not None:
            body = urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            headers["Origin"] = f"http://{HOST}:{self.port}"  # as browsers send on a POST
        if self.conn is None:
            self.conn = HTTPConnection(HOST, self.port, timeout=REQUEST_TIMEOUT)
        try:
            self.conn.request(method, path, body=body, headers=headers)
            response = self.conn.getresponse()
            text = response.read().decode("utf-8", "replace")
        except (OSError, HTTPException):
            self.close()
            raise
        self._store(response.headers.get_all("Set-Cookie") or [])
        if response.will_close:
            self.close()
        return response.status, dict(response.headers), text

    def _store(self, lines: list[str]) -> None:
        for line in lines:
            jar = SimpleCookie()
            with contextlib.suppress(CookieError):
                jar.load(line)
            for name, morsel in jar.items():
                if morsel["max-age"] == "0" or "1970" in morsel["expires"]:
                    self.cookies.pop(name, None)
                else:
                    self.cookies[name] = morsel.coded_value

    def flash_levels(self) -> list[int]:
        """The levels of the messages waiting in Django's signed messages cookie (read, not verified)."""
        raw = self.cookies.get("messages", "").strip('"')
        payload = raw.split(":", 1)[0]  # payload:timestamp:signature
        compressed = payload.startswith(".")
        payload = payload.lstrip(".")
        try:
            data = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
            messages = json.loads(zlib.decompress(data) if compressed else data)
        except (ValueError, zlib.error):
            return []
        return [m[2] for m in messages if isinstance(m, list) and len(m) > 2]

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def judgment_form(html: str, rng: random.Random) -> tuple[str, str, dict] | None:
    """(submit path, lease uid, answers) read from the compare page as a browser shows it; None without a form."""
    found = FORM_RE.search(html)
    if found is None:
        return None
    action, inner = found.groups()
    lease = LEASE_RE.search(action)
    csrf = CSRF_RE.search(inner)
    if lease is None or csrf is None:
        return None
    options: dict[str, list[str]] = {}
    data = {"csrfmiddlewaretoken": csrf.group(1), "rationale": ""}
    for tag in INPUT_RE.findall(inner):
        attrs = dict(ATTR_RE.findall(tag))
        if attrs.get("type") == "radio":
            options.setdefault(attrs["name"], []).append(attrs.get("value", ""))
    for name, values in options.items():
        data[name] = rng.choice(values)
    return action, lease.group(1), data


@dataclass
class LabelerResult:
    username: str
    cookies: dict[str, str] = field(default_factory=dict)
    cycles: int = 0
    next_ms: list[float] = field(default_factory=list)
    submit_ms: list[float] = field(default_factory=list)
    accepted: list[str] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    empty: bool = False
    ended: float = 0.0

    def error(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1


@dataclass
class Plan:
    port: int
    work_path: str
    closed: bool
    duration: float
    pace: float
    warm_up: bool


def sign_in(browser: Browser, username: str) -> None:
    status, _, html = browser.request("GET", "/accounts/login/")
    token = CSRF_RE.search(html)
    if status != 200 or token is None:
        raise RuntimeError(f"login page answered {status}")
    form = {"csrfmiddlewaretoken": token.group(1), "username": username, "password": PASSWORD, "next": ""}
    status, _, _ = browser.request("POST", "/accounts/login/", form)
    if status != 302 or "sessionid" not in browser.cookies:
        raise RuntimeError(f"signing in {username} answered {status}")


def cycle(browser: Browser, plan: Plan, result: LabelerResult, rng: random.Random, *, measure: bool) -> bool:
    """One next-and-submit cycle; False when the queue has nothing more for this labeler."""
    started = time.perf_counter()
    try:
        status, _, html = browser.request("GET", plan.work_path)
    except (OSError, HTTPException) as exc:
        result.error(f"next {type(exc).__name__}")
        return True
    fetched = time.perf_counter()
    if status != 200:
        result.error(f"next {status}")
        return True
    form = judgment_form(html, rng)
    if form is None:
        result.empty = True
        return False
    action, uid, data = form
    data["time_spent_ms"] = str(rng.randint(2_000, 60_000))
    sent = time.perf_counter()
    try:
        status, headers, _ = browser.request("POST", action, data)
    except (OSError, HTTPException) as exc:
        result.error(f"submit {type(exc).__name__}")
        return True
    done = time.perf_counter()
    if status != 302:
        result.error(f"submit {status}")
    elif SUCCESS in browser.flash_levels() and headers.get("Location", "").endswith(plan.work_path):
        result.accepted.append(uid)
    else:
        result.error("submit refused")
    if measure:
        result.cycles += 1
        result.next_ms.append((fetched - started) * 1000)
        result.submit_ms.append((done - sent) * 1000)
    return True


class StartLine:
    """Every labeler signs in (and warms up) first; the clock starts when the last one is ready."""

    def __init__(self, parties: int):
        self.at = 0.0
        self.barrier = threading.Barrier(parties, action=self._go)

    def _go(self) -> None:
        self.at = time.perf_counter()

    def wait(self) -> float:
        self.barrier.wait()
        return self.at


def labeler_loop(plan: Plan, result: LabelerResult, offset: float, start_line: StartLine, seed: int) -> None:
    rng = random.Random(seed)
    browser = Browser(plan.port, result.cookies)
    ready = True
    try:
        if "sessionid" not in browser.cookies:
            sign_in(browser, result.username)
        if plan.warm_up:
            cycle(browser, plan, result, rng, measure=False)
    except (OSError, HTTPException, RuntimeError) as exc:
        result.error(f"sign-in {exc}")
        ready = False
    start = start_line.wait()
    deadline = start + plan.duration
    due = start + offset
    while ready and result.cycles < MAX_CYCLES_PER_LABELER and time.perf_counter() < deadline:
        if not plan.closed:
            if due >= deadline:
                break
            pause = due - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
            # Behind schedule (a slow cycle): start now, without a burst to catch up.
            due = max(due + plan.pace, time.perf_counter())
        if not cycle(browser, plan, result, rng, measure=True):
            break
    result.ended = time.perf_counter() - start
    result.cookies = dict(browser.cookies)
    browser.close()


def run_clients(plan: Plan, labelers: list[LabelerResult], pipe) -> None:
    """The client process: one thread per labeler, all starting together; results go back through `pipe`."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the command stops us
    start_line = StartLine(len(labelers))
    threads = []
    for n, result in enumerate(labelers):
        offset = 0.0 if plan.closed else plan.pace * n / len(labelers)
        thread = threading.Thread(target=labeler_loop, args=(plan, result, offset, start_line, n), daemon=True)
        threads.append(thread)
        thread.start()
    for thread in threads:
        thread.join()
    pipe.send(labelers)
    pipe.close()


# -- the command -----------------------------------------------------------------------------


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile; NaN without values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def database_url() -> str:
    """A DATABASE_URL for the throwaway database the command is using (the server processes open it too)."""
    s = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{Path(s['NAME']).resolve()}"
    if connection.vendor != "postgresql":
        raise CommandError(f"bench_queue supports SQLite and PostgreSQL, not {connection.vendor}")
    auth = s["USER"] + (f":{s['PASSWORD']}" if s.get("PASSWORD") else "")
    return f"postgres://{auth}@{s.get('HOST') or HOST}:{s.get('PORT') or 5432}/{s['NAME']}"


@dataclass
class Checks:
    duplicates: int
    over_overlap: int
    lost: int
    doubled: int
    unacknowledged: int


def check_database(k: int, accepted: list[str], known: set[str]) -> Checks:
    """Invariants after a run, read from the database (cumulative over the runs so far)."""
    now = timezone.now()
    live = Q(status=Assignment.Status.LIVE, expires_at__gt=now)
    held = Assignment.objects.filter(live | Q(status=Assignment.Status.SUBMITTED))
    human = Judgment.objects.filter(kind=LabelKind.HUMAN)
    duplicates = (
        held.values("user", "item").annotate(n=Count("id")).filter(n__gt=1).count()
        + human.values("annotator", "item").annotate(n=Count("id")).filter(n__gt=1).count()
    )
    taken: dict[int, int] = {}
    for item, n in human.values_list("item").annotate(n=Count("id")):
        taken[item] = taken.get(item, 0) + n
    for item, n in Assignment.objects.filter(live).values_list("item").annotate(n=Count("id")):
        taken[item] = taken.get(item, 0) + n
    over = sum(1 for n in taken.values() if n > k)
    found: dict[str, int] = {}
    for start in range(0, len(accepted), 500):
        rows = Judgment.objects.filter(assignment__uid__in=accepted[start : start + 500], source=Source.APP)
        for uid, n in rows.values_list("assignment__uid").annotate(n=Count("id")):
            found[str(uid)] = n
    app_uids = {str(u) for u in Judgment.objects.filter(source=Source.APP).values_list("assignment__uid", flat=True)}
    return Checks(
        duplicates=duplicates,
        over_overlap=over,
        lost=sum(1 for uid in accepted if uid not in found),
        doubled=sum(1 for n in found.values() if n > 1),
        unacknowledged=len(app_uids - known),
    )


@dataclass
class Row:
    mode: str
    cycles: int
    rate: float
    next_ms: list[float]
    submit_ms: list[float]
    errors: dict[str, int]
    checks: Checks
    empty: int


class Command(BaseCommand):
    help = (
        "Benchmark the labelers' queue: N synthetic items in a throwaway database of the configured kind, "
        "served by gunicorn on 127.0.0.1 and driven by L simulated labelers in a separate process; prints "
        "p50/p95/p99 latency and throughput of 'next item' and 'submit', and duplicate, over-overlap and "
        "lost assignments (exit 1 if any)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--items", type=int, default=100_000)
        parser.add_argument("--labelers", type=int, default=32)
        parser.add_argument("--mode", choices=["closed", "paced", "both"], default="both")
        parser.add_argument("--duration", type=float, default=30.0, help=f"seconds per mode (at most {MAX_DURATION})")
        parser.add_argument("--pace", type=float, default=2.0, help="paced mode: seconds between a labeler's cycles")
        parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
        parser.add_argument("--threads", type=int, default=1, help="threads per worker (more than 1: gthread)")
        parser.add_argument("--port", type=int, default=0, help="default: a free port")

    def handle(self, items, labelers, mode, duration, pace, workers, threads, port, **options):
        if not 1 <= labelers <= MAX_LABELERS:
            raise CommandError(f"--labelers must be between 1 and {MAX_LABELERS}")
        if not 0 < duration <= MAX_DURATION:
            raise CommandError(f"--duration must be more than 0 and at most {MAX_DURATION} seconds")
        if items < 1 or pace <= 0 or workers < 2 or threads < 1:
            raise CommandError("--items and --pace must be positive, --workers at least 2, --threads at least 1")
        modes = ["closed", "paced"] if mode == "both" else [mode]
        port = port or free_port()
        with tempfile.TemporaryDirectory(prefix="bench-queue-") as tmp, throwaway_database(tmp):
            k = self._set_up(tmp, items, labelers)
            server = self._start_server(tmp, port, workers, threads)
            try:
                rows = self._drive(port, labelers, modes, duration, pace, k)
            finally:
                problem = stop_child(server, 15)
                if problem:
                    self.stderr.write(problem)
                connections.close_all()
            if any(row.errors for row in rows):
                self.stderr.write(f"server log (last lines):\n{self._log_tail(tmp, 60)}")
        self._report(rows, items, labelers, workers, threads, duration, pace)

    def _set_up(self, tmp: str, items: int, labelers: int) -> int:
        started = time.perf_counter()
        path = Path(tmp) / "pool.jsonl"
        write_synthetic(path, items, labeled_share=0)
        campaign = create_campaign(SLUG, "Queue benchmark", BENCH_RUBRIC)
        with open(path, "rb") as stream:
            import_pool(campaign, stream, source_name=path.name)
        users = [create_user(f"bench-{n:03d}", Role.LABELER, password=None) for n in range(labelers)]
        # One password hash for all: hashing it per account would take longer than the import.
        get_user_model().objects.filter(pk__in=[u.pk for u in users]).update(password=make_password(PASSWORD))
        # Labelers see only campaigns they are members of (benchmark setup: no membership events).
        Membership.objects.bulk_create([Membership(campaign=campaign, user=u) for u in users])
        self.stdout.write(
            f"{connection.vendor}: {items} items and {labelers} labelers set up in {time.perf_counter() - started:.1f}s"
        )
        return campaign.settings.overlap_k

    def _server_env(self, tmp: str) -> dict:
        """The web processes' environment (bench_load points REDIS_URL at a real Redis)."""
        env = {
            **os.environ,
            "DEBUG": "false",
            "SECRET_KEY": settings.SECRET_KEY,
            "DATABASE_URL": database_url(),
            # Nothing listens here: a rescoring request after N judgments is recorded but not queued.
            "REDIS_URL": f"unix://{tmp}/no-redis.sock?db=0",
            "REVIEWS_VAR_DIR": tmp,
            "PYTHONUNBUFFERED": "1",
        }
        env.pop("SECRET_KEY_FILE", None)
        return env

    def _start_server(self, tmp: str, port: int, workers: int, threads: int) -> Child:
        env = self._server_env(tmp)
        Path(tmp, "staticfiles").mkdir(exist_ok=True)
        argv = [sys.executable, "-m", "gunicorn", "config.wsgi", "--bind", f"{HOST}:{port}"]
        argv += ["--workers", str(workers), "--no-control-socket", "--graceful-timeout", "10"]
        if threads > 1:
            argv += ["--worker-class", "gthread", "--threads", str(threads)]
        connections.close_all()  # the server opens its own; SQLite must not see a writer here
        log = open(Path(tmp) / "gunicorn.log", "wb")  # noqa: SIM115 - the child writes it until stopped
        process = subprocess.Popen(  # noqa: S603
            argv,
            env=env,
            cwd=settings.BASE_DIR,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        server = Child("gunicorn", process)
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            if process.poll() is not None:
                raise CommandError(f"gunicorn exited with {process.returncode}:\n{self._log_tail(tmp)}")
            with contextlib.suppress(OSError, HTTPException):
                if Browser(port).request("GET", "/accounts/login/")[0] == 200:
                    break
            if time.monotonic() > deadline:
                stop_child(server, 5)
                raise CommandError(f"gunicorn did not answer within {READY_TIMEOUT}s:\n{self._log_tail(tmp)}")
            time.sleep(0.2)
        kind = f"gthread, {threads} threads each" if threads > 1 else "sync"
        self.stdout.write(f"gunicorn: {workers} workers ({kind}) on {HOST}:{port}")
        return server

    def _log_tail(self, tmp: str, lines: int = 20) -> str:
        return "\n".join(Path(tmp, "gunicorn.log").read_text(errors="replace").splitlines()[-lines:])

    def _drive(self, port, labelers, modes, duration, pace, k) -> list[Row]:
        results = [LabelerResult(f"bench-{n:03d}") for n in range(labelers)]
        rows, known = [], set()
        for n, mode in enumerate(modes):
            plan = Plan(port, f"/campaigns/{SLUG}/work/", mode == "closed", duration, pace, warm_up=n == 0)
            fresh = [LabelerResult(r.username, cookies=r.cookies) for r in results]
            results = self._client_process(plan, fresh)
            accepted = [uid for r in results for uid in r.accepted]
            known.update(accepted)
            checks = check_database(k, accepted, known)
            connections.close_all()
            cycles = sum(r.cycles for r in results)
            # Paced labelers stop at their last due time before the end; the offered window is the duration.
            elapsed = max([duration, *(r.ended for r in results)])
            errors: dict[str, int] = {}
            for r in results:
                for kind, count in r.errors.items():
                    errors[kind] = errors.get(kind, 0) + count
            rows.append(
                Row(
                    mode=f"closed x{labelers}" if plan.closed else f"paced {pace:g}s x{labelers}",
                    cycles=cycles,
                    rate=cycles / elapsed,
                    next_ms=[v for r in results for v in r.next_ms],
                    submit_ms=[v for r in results for v in r.submit_ms],
                    errors=errors,
                    checks=checks,
                    empty=sum(r.empty for r in results),
                )
            )
            self.stdout.write(f"{rows[-1].mode}: {cycles} cycles in {elapsed:.1f}s")
        return rows

    def _client_process(self, plan: Plan, labelers: list[LabelerResult]) -> list[LabelerResult]:
        """Run the simulated labelers in a forked process (no Django database use there) and collect them."""
        context = multiprocessing.get_context("fork")
        receive, send = context.Pipe(duplex=False)
        process = context.Process(target=run_clients, args=(plan, labelers, send), daemon=True)
        process.start()
        send.close()
        try:
            if not receive.poll(plan.duration + CLIENT_GRACE):
                raise CommandError(f"the client process did not finish within {plan.duration + CLIENT_GRACE:g}s")
            return receive.recv()
        except EOFError:
            raise CommandError(f"the client process died (exit code {process.exitcode})") from None
        finally:
            if process.is_alive():
                process.terminate()
            process.join(5)

    def _report(self, rows, items, labelers, workers, threads, duration, pace) -> None:
        out = self.stdout
        out.write("")
        out.write(
            f"bench_queue: {connection.vendor}, {items} items, {labelers} labelers, gunicorn {workers} workers"
            f"{f' x {threads} threads' if threads > 1 else ''}, {duration:g}s per mode"
        )
        header = (
            f"{'mode':<16} {'cycles':>7} {'cycles/s':>8}  {'next p50/p95/p99 ms':>21}  {'submit p50/p95/p99 ms':>21}"
            f"  {'errors':>6} {'duplicates':>10} {'over-overlap':>12} {'lost':>5}"
        )
        out.write(header)
        out.write("-" * len(header))

        def triple(values):
            return "/".join(f"{percentile(values, p):.0f}" for p in (50, 95, 99))

        for row in rows:
            c = row.checks
            out.write(
                f"{row.mode:<16} {row.cycles:>7} {row.rate:>8.1f}  {triple(row.next_ms):>21}  "
                f"{triple(row.submit_ms):>21}  {sum(row.errors.values()):>6} {c.duplicates:>10} "
                f"{c.over_overlap:>12} {c.lost:>5}"
            )
        for row in rows:
            if row.errors:
                out.write(f"{row.mode} errors: {', '.join(f'{k} x{n}' for k, n in sorted(row.errors.items()))}")
            if row.empty:
                out.write(f"{row.mode}: the queue ran empty for {row.empty} labelers")
            if row.checks.doubled or row.checks.unacknowledged:
                out.write(
                    f"{row.mode}: {row.checks.doubled} accepted submits stored twice; "
                    f"{row.checks.unacknowledged} judgments stored without an accepted response"
                )
        self._targets(rows, labelers / pace)
        broken = [r.mode for r in rows if r.checks.duplicates or r.checks.over_overlap or r.checks.lost]
        broken += [r.mode for r in rows if r.checks.doubled]
        if broken:
            raise CommandError(f"duplicate, over-overlap or lost assignments in: {', '.join(dict.fromkeys(broken))}")

    def _targets(self, rows, offered: float) -> None:
        for row in rows:
            if row.mode.startswith("closed"):
                verdict = "met" if row.rate >= 100 else "missed"
                self.stdout.write(f"target closed loop >= 100 cycles/s: {verdict} ({row.rate:.1f})")
            else:
                p99n, p99s = percentile(row.next_ms, 99), percentile(row.submit_ms, 99)
                verdict = "met" if p99n <= 100 and p99s <= 150 else "missed"
                self.stdout.write(
                    f"target paced p99 next <= 100 ms and submit <= 150 ms: {verdict} "
                    f"({p99n:.0f} ms, {p99s:.0f} ms; {offered:g} cycles/s offered)"
                )
