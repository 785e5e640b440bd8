"""Benchmark the labelers' queue end to end: gunicorn serving simulated labelers over HTTP on 127.0.0.1.

A separate client process (forked, standard library only: http.client over one thread per
labeler) signs each labeler in and then loops like a browser: GET the work page ("next item"),
read the lease's form, POST a judgment ("submit"; its redirect is the next loop's GET). The
closed loop can also be driven by wrk (--client wrk, reviews/dev/wrk.py), and is set beside a
floor: the same loop on a minimal authenticated page served by the same gunicorn from a dev-only
entry (reviews/dev/floor.py). The CPU that the client, gunicorn and the database spent per cycle
is read from /proc (reviews/dev/cpu.py).
"""

import base64
import contextlib
import json
import math
import multiprocessing
import os
import random
import re
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from dataclasses import dataclass, field, replace
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
from reviews.dev import wrk
from reviews.dev.benchmarks import autovacuum_stand_in, throwaway_database
from reviews.dev.cpu import CpuProbe, CpuUse
from reviews.dev.floor_urls import FLOOR_FORM_ID, FLOOR_PATH
from reviews.dev.synthetic import BENCH_RUBRIC, write_synthetic
from reviews.management.commands.run_desk import Child, stop_child
from reviews.models import (
    Answer,
    Assignment,
    Escalation,
    FeedbackEvent,
    FinalAnswer,
    Item,
    Judgment,
    LabelKind,
    Membership,
    Source,
)
from reviews.people.accounts import create_user

HOST = "127.0.0.1"
SLUG = "bench"
# The tables a labeling session grows, analyzed while the benchmark runs where autovacuum is off.
ANALYZED = [m._meta.db_table for m in (Assignment, Judgment, Answer, FinalAnswer, FeedbackEvent, Escalation, Item)]
PASSWORD = "bench-queue-password-0123"  # noqa: S105 - throwaway accounts in a throwaway database
MAX_DURATION = 300
MAX_LABELERS = 256
MAX_CYCLES_PER_LABELER = 20_000
REQUEST_TIMEOUT = 30
READY_TIMEOUT = 60
# The client process gets this long beyond the run's duration before it is stopped.
CLIENT_GRACE = 120
SUCCESS = 25  # django.contrib.messages.SUCCESS: the level of "Judgment saved."
JUDGMENT_FORM_ID = "judgment-form"
PRODUCTION_APP = "config.wsgi"
FLOOR_APP = "reviews.dev.floor"
# Above this share of the machine's CPU, the Python client visibly takes capacity from the server.
CLIENT_SHARE_WARNING = 0.10

FORM_RE = r'<form id="{}"[^>]*\baction="([^"]+)"[^>]*>(.*?)</form>'
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


def radio_groups(inner: str) -> dict[str, list[str]]:
    """The radio groups of a form's HTML, in page order, with their values."""
    options: dict[str, list[str]] = {}
    for tag in INPUT_RE.findall(inner):
        attrs = dict(ATTR_RE.findall(tag))
        if attrs.get("type") == "radio":
            options.setdefault(attrs["name"], []).append(attrs.get("value", ""))
    return options


def read_form(html: str, rng: random.Random, form_id: str) -> tuple[str, dict] | None:
    """(action, fields) of the form with this id as a browser posts it (a value per radio group); None without it."""
    found = re.search(FORM_RE.format(re.escape(form_id)), html, re.S)
    if found is None:
        return None
    action, inner = found.groups()
    csrf = CSRF_RE.search(inner)
    if csrf is None:
        return None
    data = {"csrfmiddlewaretoken": csrf.group(1), "rationale": ""}
    for name, values in radio_groups(inner).items():
        data[name] = rng.choice(values)
    return action, data


def judgment_form(html: str, rng: random.Random) -> tuple[str, str, dict] | None:
    """(submit path, lease uid, answers) read from the compare page as a browser shows it; None without a form."""
    form = read_form(html, rng, JUDGMENT_FORM_ID)
    lease = LEASE_RE.search(form[0]) if form else None
    if form is None or lease is None:
        return None
    return form[0], lease.group(1), form[1]


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
    page: str
    closed: bool
    duration: float
    pace: float
    warm_up: bool
    # The floor's form has no lease and its POST no message: a 302 back to the page acknowledges it.
    floor: bool = False
    probe: CpuProbe | None = None

    @property
    def form_id(self) -> str:
        return FLOOR_FORM_ID if self.floor else JUDGMENT_FORM_ID


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
        status, _, html = browser.request("GET", plan.page)
    except (OSError, HTTPException) as exc:
        result.error(f"next {type(exc).__name__}")
        return True
    fetched = time.perf_counter()
    if status != 200:
        result.error(f"next {status}")
        return True
    form = read_form(html, rng, plan.form_id)
    uid = LEASE_RE.search(form[0]) if form else None
    if form is None or (uid is None and not plan.floor):
        result.empty = True
        return False
    action, data = form
    data["time_spent_ms"] = str(rng.randint(2_000, 60_000))
    sent = time.perf_counter()
    try:
        status, headers, _ = browser.request("POST", action, data)
    except (OSError, HTTPException) as exc:
        result.error(f"submit {type(exc).__name__}")
        return True
    done = time.perf_counter()
    back = headers.get("Location", "").endswith(plan.page)
    if status != 302:
        result.error(f"submit {status}")
    elif back and plan.floor:
        pass  # the floor's POST stores nothing: its redirect is all there is to acknowledge
    elif back and SUCCESS in browser.flash_levels():
        result.accepted.append(uid.group(1))
    else:
        result.error("submit refused")
    if measure:
        result.cycles += 1
        result.next_ms.append((fetched - started) * 1000)
        result.submit_ms.append((done - sent) * 1000)
    return True


class StartLine:
    """Every labeler signs in (and warms up) first; the clock starts when the last one is ready."""

    def __init__(self, parties: int, on_start=None):
        self.at = 0.0
        self.on_start = on_start
        self.barrier = threading.Barrier(parties, action=self._go)

    def _go(self) -> None:
        if self.on_start is not None:
            self.on_start()
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


def own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_clients(plan: Plan, labelers: list[LabelerResult], pipe) -> None:
    """The client process: one thread per labeler, all starting together; results and CPU use go back through `pipe`."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the command stops us
    marks = {}

    def on_start():
        marks.update(cpu=own_cpu_seconds(), at=time.perf_counter(), sample=plan.probe and plan.probe.sample())

    start_line = StartLine(len(labelers), on_start)
    threads = []
    for n, result in enumerate(labelers):
        offset = 0.0 if plan.closed else plan.pace * n / len(labelers)
        thread = threading.Thread(target=labeler_loop, args=(plan, result, offset, start_line, n), daemon=True)
        threads.append(thread)
        thread.start()
    for thread in threads:
        thread.join()
    cpu = None
    if plan.probe is not None and marks:
        cpu = CpuUse.between(
            marks["sample"],
            plan.probe.sample(),
            wall=time.perf_counter() - marks["at"],
            client=own_cpu_seconds() - marks["cpu"],
            database=plan.probe.database_marker is not None,
        )
    pipe.send((labelers, cpu))
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
    kind: str  # floor, closed or paced
    client: str  # python or wrk
    cycles: int
    rate: float
    next_ms: list[float]
    submit_ms: list[float]
    errors: dict[str, int]
    checks: Checks
    empty: int
    cpu: CpuUse | None = None
    notes: list[str] = field(default_factory=list)


def summed(counts: list[dict[str, int]]) -> dict[str, int]:
    total: dict[str, int] = {}
    for one in counts:
        for kind, count in one.items():
            total[kind] = total.get(kind, 0) + count
    return total


class Command(BaseCommand):
    help = (
        "Benchmark the labelers' queue: N synthetic items in a throwaway database of the configured kind, "
        "served by gunicorn on 127.0.0.1 and driven by L simulated labelers in a separate process; prints "
        "p50/p95/p99 latency and throughput of 'next item' and 'submit', the CPU each side spent per cycle, "
        "and duplicate, over-overlap and lost assignments (exit 1 if any). By default it first measures the "
        "floor (the same closed loop on a minimal login-required page with a CSRF-checked form, served by "
        "the same gunicorn from the dev entry reviews.dev.floor) and prints the cycle's cost as a multiple "
        "of the floor's. The closed loop (cycle and floor) is driven by the Python client, or by wrk "
        f"with --client wrk ({wrk.INSTALL}); the paced mode always by the Python client. The CPU table says "
        "how much of the machine the client took."
    )

    def add_arguments(self, parser):
        parser.add_argument("--items", type=int, default=100_000)
        parser.add_argument("--labelers", type=int, default=32)
        parser.add_argument("--mode", choices=["closed", "paced", "both"], default="both")
        floor = parser.add_mutually_exclusive_group()
        floor.add_argument(
            "--floor",
            dest="floor",
            action="store_const",
            const="only",
            default="with",
            help="measure only the floor (the closed loop on the dev entry's minimal page); --items still sizes the DB",
        )
        floor.add_argument("--no-floor", dest="floor", action="store_const", const="skip", help="skip the floor")
        parser.add_argument(
            "--client",
            choices=["python", "wrk"],
            default="python",
            help="load generator of the closed loop and the floor: the Python client, or wrk with wrk_cycle.lua",
        )
        parser.add_argument("--duration", type=float, default=30.0, help=f"seconds per mode (at most {MAX_DURATION})")
        parser.add_argument("--pace", type=float, default=2.0, help="paced mode: seconds between a labeler's cycles")
        parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
        parser.add_argument("--threads", type=int, default=1, help="threads per worker (more than 1: gthread)")
        parser.add_argument("--port", type=int, default=0, help="default: a free port")

    def handle(self, items, labelers, mode, duration, pace, workers, threads, port, floor, client, **_):
        if not 1 <= labelers <= MAX_LABELERS:
            raise CommandError(f"--labelers must be between 1 and {MAX_LABELERS}")
        if not 0 < duration <= MAX_DURATION:
            raise CommandError(f"--duration must be more than 0 and at most {MAX_DURATION} seconds")
        if items < 1 or pace <= 0 or workers < 2 or threads < 1:
            raise CommandError("--items and --pace must be positive, --workers at least 2, --threads at least 1")
        modes = ["closed", "paced"] if mode == "both" else [mode]
        # The floor first, on its own server (the dev entry); the cycle on the production entry.
        phases = [] if floor == "skip" else [(FLOOR_APP, ["floor"])]
        phases += [] if floor == "only" else [(PRODUCTION_APP, modes)]
        self.wrk = self._load_generator(client, closed="closed" in modes or floor != "skip")
        self.results = [LabelerResult(f"bench-{n:03d}") for n in range(labelers)]
        self.known: set[str] = set()
        rows: list[Row] = []
        with tempfile.TemporaryDirectory(prefix="bench-queue-") as tmp, throwaway_database(tmp):
            self.tmp = tmp
            k = self._set_up(tmp, items, labelers)
            database = None if connection.vendor == "sqlite" else connection.settings_dict["NAME"]
            with autovacuum_stand_in(ANALYZED) as standing_in:
                if standing_in:
                    self.stdout.write("autovacuum is off on this server: ANALYZE of the labeling tables every 10 s")
                rows += self._run_phases(tmp, phases, port, workers, threads, labelers, duration, pace, k, database)
        self._report(rows, items, labelers, workers, threads, duration, pace)

    def _run_phases(self, tmp, phases, port, workers, threads, labelers, duration, pace, k, database) -> list[Row]:
        """Each phase's server started, driven through its modes and stopped."""
        rows: list[Row] = []
        for app, phase_modes in phases:
            phase_port = port or free_port()
            server = self._start_server(tmp, phase_port, workers, threads, app=app)
            self.probe = CpuProbe(server.process.pid, database)
            try:
                rows += self._drive(phase_port, labelers, phase_modes, duration, pace, k)
            finally:
                problem = stop_child(server, 15)
                if problem:
                    self.stderr.write(problem)
                connections.close_all()
            if any(row.errors for row in rows):
                self.stderr.write(f"server log (last lines):\n{self._log_tail(tmp, 60)}")
        return rows

    def _load_generator(self, client: str, *, closed: bool) -> str | None:
        """The wrk binary when it drives a closed loop in this run, else None (the Python client)."""
        if client == "python" or not closed:
            return None
        found = wrk.find_wrk()
        if found is None:
            raise CommandError(
                f"--client wrk: wrk is not installed: {wrk.INSTALL} (Debian's wrk 4.1), or use --client python"
            )
        return found

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

    def _start_server(self, tmp: str, port: int, workers: int, threads: int, app: str = PRODUCTION_APP) -> Child:
        env = self._server_env(tmp)
        Path(tmp, "staticfiles").mkdir(exist_ok=True)
        argv = [sys.executable, "-m", "gunicorn", app, "--bind", f"{HOST}:{port}"]
        argv += ["--workers", str(workers), "--no-control-socket", "--graceful-timeout", "10"]
        if threads > 1:
            argv += ["--worker-class", "gthread", "--threads", str(threads)]
        connections.close_all()  # the server opens its own; SQLite must not see a writer here
        log = open(Path(tmp) / "gunicorn.log", "ab")  # noqa: SIM115 - the child writes it until stopped
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
        self.stdout.write(f"gunicorn {app}: {workers} workers ({kind}) on {HOST}:{port}")
        return server

    def _log_tail(self, tmp: str, lines: int = 20) -> str:
        return "\n".join(Path(tmp, "gunicorn.log").read_text(errors="replace").splitlines()[-lines:])

    def _drive(self, port, labelers, modes, duration, pace, k) -> list[Row]:
        """Run `modes` against the server on `port`; the labelers' cookie jars carry over from run to run."""
        rows = []
        for n, mode in enumerate(modes):
            page = FLOOR_PATH if mode == "floor" else f"/campaigns/{SLUG}/work/"
            plan = Plan(port, page, mode != "paced", duration, pace, warm_up=n == 0, floor=mode == "floor")
            plan.probe = self.probe
            fresh = [LabelerResult(r.username, cookies=r.cookies) for r in self.results]
            use_wrk = self.wrk is not None and plan.closed
            if use_wrk:
                self.results, elapsed, cpu, notes = self._wrk_process(plan, fresh)
            else:
                self.results, cpu = self._client_process(plan, fresh)
                # Paced labelers stop at their last due time before the end; the offered window is the duration.
                elapsed, notes = max([duration, *(r.ended for r in self.results)]), []
            accepted = [uid for r in self.results for uid in r.accepted]
            self.known.update(accepted)
            checks = check_database(k, accepted, self.known)
            connections.close_all()
            cycles = sum(r.cycles for r in self.results)
            label = f"paced {pace:g}s x{labelers}" if mode == "paced" else f"{mode} x{labelers}"
            rows.append(
                Row(
                    mode=label,
                    kind=mode,
                    client="wrk" if use_wrk else "python",
                    cycles=cycles,
                    rate=cycles / elapsed,
                    next_ms=[v for r in self.results for v in r.next_ms],
                    submit_ms=[v for r in self.results for v in r.submit_ms],
                    errors=summed([r.errors for r in self.results]),
                    checks=checks,
                    empty=sum(r.empty for r in self.results),
                    cpu=cpu,
                    notes=notes,
                )
            )
            self.stdout.write(f"{rows[-1].mode} ({rows[-1].client}): {cycles} cycles in {elapsed:.1f}s")
        return rows

    def _client_process(self, plan: Plan, labelers: list[LabelerResult]) -> tuple[list[LabelerResult], CpuUse | None]:
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

    def _wrk_process(self, plan: Plan, labelers: list[LabelerResult]):
        """The closed loop driven by wrk: the Python client signs in and warms up, wrk runs the timed loop."""
        # Sign-in and the warm-up cycle: the client process with no time on the clock.
        ready, _ = self._client_process(replace(plan, duration=0, probe=None), labelers)
        for result in ready:
            if result.errors:
                raise CommandError(f"{result.username} could not sign in or warm up: {result.errors}")
        tmp = Path(self.tmp)
        config, out = tmp / "wrk.conf", tmp / "wrk-summary.json"
        out.unlink(missing_ok=True)
        wrk.write_config(
            config,
            page=plan.page,
            form_id=plan.form_id,
            message_level=None if plan.floor else SUCCESS,
            out=out,
            jars=[r.cookies for r in ready],
        )
        started, at = self.probe.sample(), time.perf_counter()
        try:
            run = wrk.run(
                self.wrk,
                port=plan.port,
                config=config,
                out=out,
                threads=len(ready),
                duration=plan.duration,
                log=tmp / "wrk.log",
            )
        except RuntimeError as exc:
            raise CommandError(str(exc)) from None
        cpu = CpuUse.between(
            started,
            self.probe.sample(),
            wall=time.perf_counter() - at,
            client=run.cpu_seconds,
            database=self.probe.database_marker is not None,
        )
        wrk.settle()
        results = []
        for before, summary in zip(ready, run.labelers, strict=True):
            # wrk's cookie changes stay in wrk; the session and CSRF cookies are unchanged, a message is stale.
            cookies = {k: v for k, v in before.cookies.items() if k != "messages"}
            result = LabelerResult(before.username, cookies=cookies, cycles=summary["cycles"])
            result.next_ms, result.submit_ms = summary["next_ms"], summary["submit_ms"]
            # The warm-up's submits count as the Python client's do.
            result.accepted = before.accepted + summary["accepted"]
            result.errors, result.empty = summary["errors"], summary["empty"]
            results.append(result)
        notes = [f"wrk: {run.requests} requests in {run.seconds:.1f}s"]
        if run.socket_errors:
            notes.append(f"wrk socket errors: {run.socket_errors}")
        unverified = sum(s["unverified"] for s in run.labelers)
        if unverified:
            notes.append(f"{unverified} submits acknowledged by their redirect only (compressed message cookie)")
        return results, run.seconds, cpu, notes

    def _report(self, rows, items, labelers, workers, threads, duration, pace) -> None:
        out = self.stdout
        out.write("")
        out.write(
            f"bench_queue: {connection.vendor}, {items} items, {labelers} labelers, gunicorn {workers} workers"
            f"{f' x {threads} threads' if threads > 1 else ''}, {duration:g}s per mode"
        )
        header = (
            f"{'mode':<16} {'client':<6} {'cycles':>7} {'cycles/s':>8}  {'next p50/p95/p99 ms':>21}  "
            f"{'submit p50/p95/p99 ms':>21}  {'errors':>6} {'duplicates':>10} {'over-overlap':>12} {'lost':>5}"
        )
        out.write(header)
        out.write("-" * len(header))

        def triple(values):
            return "/".join(f"{percentile(values, p):.0f}" for p in (50, 95, 99))

        for row in rows:
            c = row.checks
            out.write(
                f"{row.mode:<16} {row.client:<6} {row.cycles:>7} {row.rate:>8.1f}  {triple(row.next_ms):>21}  "
                f"{triple(row.submit_ms):>21}  {sum(row.errors.values()):>6} {c.duplicates:>10} "
                f"{c.over_overlap:>12} {c.lost:>5}"
            )
        if any(row.kind == "floor" for row in rows):
            out.write(f"(floor: 'next' is the GET of {FLOOR_PATH}, 'submit' its POST; no item, no judgment)")
        for row in rows:
            for note in row.notes:
                out.write(f"{row.mode}: {note}")
            if row.errors:
                out.write(f"{row.mode} errors: {', '.join(f'{k} x{n}' for k, n in sorted(row.errors.items()))}")
            if row.empty:
                out.write(f"{row.mode}: the queue ran empty for {row.empty} labelers")
            if row.checks.doubled or row.checks.unacknowledged:
                out.write(
                    f"{row.mode}: {row.checks.doubled} accepted submits stored twice; "
                    f"{row.checks.unacknowledged} judgments stored without an accepted response"
                    + (" (wrk stops with submits in flight)" if row.client == "wrk" else "")
                )
        self._cpu_table(rows)
        self._floor_ratio(rows)
        self._targets(rows, labelers / pace)
        broken = [r.mode for r in rows if r.checks.duplicates or r.checks.over_overlap or r.checks.lost]
        broken += [r.mode for r in rows if r.checks.doubled]
        if broken:
            raise CommandError(f"duplicate, over-overlap or lost assignments in: {', '.join(dict.fromkeys(broken))}")

    def _cpu_table(self, rows) -> None:
        measured = [row for row in rows if row.cpu is not None and row.cycles]
        if not measured:
            return
        out = self.stdout
        out.write("")
        header = (
            f"{'CPU ms per cycle':<16} {'client':>7} {'web':>7} {'db':>7} {'other':>7}  "
            f"{'client share':>12} {'client cores':>12} {'machine busy':>12}"
        )
        out.write(header)
        out.write("-" * len(header))

        def per_cycle(seconds, cycles):
            return "-" if seconds is None else f"{seconds * 1000 / cycles:.1f}"

        for row in measured:
            cpu = row.cpu
            share = "-" if cpu.client_share is None else f"{cpu.client_share:.0%}"
            cores = os.cpu_count() or 1
            busy = "-" if cpu.machine is None else f"{cpu.machine / (cpu.wall * cores):.0%} of {cores}"
            out.write(
                f"{row.mode:<16} {per_cycle(cpu.client, row.cycles):>7} {per_cycle(cpu.web, row.cycles):>7} "
                f"{per_cycle(cpu.database, row.cycles):>7} {per_cycle(cpu.other, row.cycles):>7}  "
                f"{share:>12} {cpu.client_cores:>12.2f} {busy:>12}"
            )
        out.write("(web: gunicorn's processes; db: this database's PostgreSQL backends, on SQLite '-' and inside web;")
        out.write(" other: the rest of the machine's busy time, other users' processes included)")
        for row in measured:
            share = row.cpu.client_share
            if row.client == "python" and row.kind != "paced" and share and share > CLIENT_SHARE_WARNING:
                out.write(
                    f"{row.mode}: the Python client took {share:.0%} of the machine's CPU, which the server "
                    f"lacked: its capacity may be understated by as much; --client wrk costs less"
                )

    def _floor_ratio(self, rows) -> None:
        floors = [row for row in rows if row.kind == "floor" and row.cycles]
        if not floors:
            return
        floor = floors[0]
        for row in rows:
            if row.kind != "closed" or not row.cycles:
                continue
            ratio = floor.rate / row.rate
            verdict = "met" if ratio <= 3 else "missed"
            line = (
                f"cycle / floor: {row.mode} costs {ratio:.2f}x the floor by throughput "
                f"({row.rate:.1f} vs {floor.rate:.1f} cycles/s, {row.client} vs {floor.client})"
            )
            server, floor_server = row.cpu and row.cpu.server, floor.cpu and floor.cpu.server
            if server and floor_server:
                cycle_ms, floor_ms = server * 1000 / row.cycles, floor_server * 1000 / floor.cycles
                line += f", {cycle_ms / floor_ms:.2f}x by server CPU per cycle ({cycle_ms:.1f} vs {floor_ms:.1f} ms)"
            self.stdout.write(f"{line}; target <= 3x: {verdict}")

    def _targets(self, rows, offered: float) -> None:
        for row in rows:
            if row.kind == "closed":
                verdict = "met" if row.rate >= 100 else "missed"
                self.stdout.write(f"target closed loop >= 100 cycles/s: {verdict} ({row.rate:.1f}, {row.client})")
            elif row.kind == "paced":
                p99n, p99s = percentile(row.next_ms, 99), percentile(row.submit_ms, 99)
                verdict = "met" if p99n <= 100 and p99s <= 150 else "missed"
                self.stdout.write(
                    f"target paced p99 next <= 100 ms and submit <= 150 ms: {verdict} "
                    f"({p99n:.0f} ms, {p99s:.0f} ms; {offered:g} cycles/s offered)"
                )
