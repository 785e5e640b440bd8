"""`make run`: migrate, load the demo, then run Redis, an RQ worker and the web server until Ctrl-C."""

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import connections

from config.env import env_str
from reviews.dev.demo import DEMO_SLUG, ensure_demo, write_accounts
from reviews.dev.embedded_redis import EmbeddedRedis, EmbeddedRedisError
from scoring.jobs import rescore_due

HOST = "127.0.0.1"
STOP_TIMEOUT = 15.0
READY_TIMEOUT = 60.0
POLL_SECONDS = 0.2


@dataclass
class Child:
    name: str
    process: subprocess.Popen


class Children:
    """Child processes, each in its own session, stopped in the reverse order of their start."""

    def __init__(self):
        self.children: list[Child] = []

    def start(self, name: str, argv: list[str], *, env: dict, cwd: Path) -> Child:
        # Their own sessions: the terminal's Ctrl-C reaches only us, and we stop them in order.
        process = subprocess.Popen(argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL, start_new_session=True)  # noqa: S603
        child = Child(name, process)
        self.children.append(child)
        return child

    def first_exited(self) -> Child | None:
        return next((c for c in self.children if c.process.poll() is not None), None)

    def stop_all(self, timeout: float = STOP_TIMEOUT) -> list[str]:
        """Stop every child (SIGTERM, then SIGKILL to its group after `timeout`); return what went wrong."""
        problems = []
        for child in reversed(self.children):
            problem = stop_child(child, timeout)
            if problem:
                problems.append(problem)
        return problems


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def stop_child(child: Child, timeout: float) -> str | None:
    """Stop one child and whatever it left in its process group; a message if it had to be killed."""
    process, problem = child.process, None
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            problem = f"{child.name} (pid {process.pid}) did not stop within {timeout:g} s and was killed"
            _kill_group(process.pid)
            process.wait()
    # Leftovers of a child that died (a gunicorn worker, an RQ work horse) share its group id, which
    # Linux does not hand out again while any of them lives.
    _kill_group(process.pid)
    return problem


class StopSignals:
    """Record SIGINT and SIGTERM instead of raising, so that the main loop stops everything in order."""

    def __init__(self):
        self.received: int | None = None
        self._previous: dict = {}

    def install(self) -> "StopSignals":
        for signum in (signal.SIGINT, signal.SIGTERM):
            self._previous[signum] = signal.signal(signum, self._record)
        return self

    def _record(self, signum, frame) -> None:
        self.received = signum

    def restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)

    @property
    def requested(self) -> bool:
        return self.received is not None


def port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # As gunicorn binds: a port in TIME_WAIT after the last run is free.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def child_env(redis_url: str | None) -> dict:
    """Our environment with paths made absolute (children run in the project directory) and Redis set."""
    env = dict(os.environ)
    env["REVIEWS_VAR_DIR"] = str(Path(settings.VAR_DIR).resolve())
    if env.get("SECRET_KEY_FILE"):
        env["SECRET_KEY_FILE"] = str(Path(env["SECRET_KEY_FILE"]).resolve())
    if redis_url:
        env["REDIS_URL"] = redis_url
    env["PYTHONUNBUFFERED"] = "1"
    return env


class Command(BaseCommand):
    help = (
        "Migrate, create the demo accounts and campaign (once), then run an embedded Redis (unless REDIS_URL "
        f"is set), an RQ worker and the web server on {HOST}; Ctrl-C stops them all."
    )

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=8000, help="web server port (default 8000)")
        parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes (default 2)")
        parser.add_argument("--no-demo", action="store_true", help="do not create the demo accounts and campaign")

    def handle(self, port: int, workers: int, no_demo: bool, **options):
        if not port_is_free(HOST, port):
            raise CommandError(f"port {port} on {HOST} is in use (another run_desk?); choose another with --port")
        demo = self._set_up(no_demo)
        failure = self._run(port, workers, demo)
        if failure:
            raise CommandError(failure)
        self.stdout.write("Stopped.")

    def _set_up(self, no_demo: bool):
        """Migrate and load the demo (once); return the demo result, None with --no-demo."""
        try:
            call_command("migrate", interactive=False, verbosity=0)
            self.stdout.write("Database migrated.")
            demo = None if no_demo else ensure_demo(self.stdout, show_passwords=False)
        except KeyboardInterrupt:
            raise CommandError("interrupted during set-up; nothing was started") from None
        connections.close_all()  # the children open their own; we keep no database handle while waiting
        # WhiteNoise serves from the finders (no collectstatic), but warns at every start without this folder.
        Path(settings.STATIC_ROOT).mkdir(parents=True, exist_ok=True)
        return demo

    def _run(self, port: int, workers: int, demo) -> str | None:
        """Start Redis, the worker and the web server, supervise them, stop them all; return what failed."""
        stop = StopSignals().install()
        children, redis, failure = Children(), None, None
        try:
            redis_url = env_str("REDIS_URL")
            if not redis_url:
                redis = EmbeddedRedis(settings.REDIS_SOCKET, directory=settings.VAR_DIR).start()
                redis_url = redis.url
            self._start_children(children, child_env(redis_url), port, workers)
            failure = self._wait_until_ready(port, children, redis, stop)
            if failure is None and not stop.requested:
                # Score what changed while we were stopped (the embedded Redis keeps no jobs).
                for line in rescore_due():
                    self.stdout.write(f"rescoring {line}")
                connections.close_all()
                self._banner(port, children, redis, demo)
                failure = self._supervise(children, redis, stop)
        except EmbeddedRedisError as exc:
            failure = str(exc)
        finally:
            self.stdout.write("Stopping ...")
            self.stdout.flush()
            for problem in children.stop_all():
                self.stderr.write(problem)
            if redis is not None:
                redis.stop()
            stop.restore()
        return failure

    def _start_children(self, children: Children, env: dict, port: int, workers: int) -> None:
        base = Path(settings.BASE_DIR)
        manage = [sys.executable, str(base / "manage.py")]
        children.start("RQ worker", [*manage, "rqworker", "default"], env=env, cwd=base)
        # The schedule: looks for campaigns to rescore every SCORING_SCHEDULE_SECONDS.
        children.start("scheduler", [*manage, "rqcron", "scoring.cron"], env=env, cwd=base)
        web = [sys.executable, "-m", "gunicorn", "config.wsgi", "--bind", f"{HOST}:{port}", "--workers", str(workers)]
        # No control socket: gunicorn's default path is shared by every instance in the home directory.
        web += ["--graceful-timeout", "10", "--no-control-socket"]
        children.start("web server", web, env=env, cwd=base)

    def _dead(self, children: Children, redis: EmbeddedRedis | None) -> str | None:
        dead = children.first_exited()
        if dead is not None:
            return f"the {dead.name} exited unexpectedly (exit code {dead.process.returncode}); stopped the others"
        if redis is not None and not redis.running():
            return "the embedded Redis exited unexpectedly; stopped the others"
        return None

    def _wait_until_ready(self, port, children, redis, stop) -> str | None:
        deadline = time.monotonic() + READY_TIMEOUT
        while not stop.requested:
            failure = self._dead(children, redis)
            if failure or answers(HOST, port):
                return failure
            if time.monotonic() > deadline:
                return f"the web server did not answer on {HOST}:{port} within {READY_TIMEOUT:g} s"
            time.sleep(POLL_SECONDS)
        return None

    def _supervise(self, children, redis, stop) -> str | None:
        while not stop.requested:
            failure = self._dead(children, redis)
            if failure:
                return failure
            time.sleep(POLL_SECONDS)
        return None

    def _banner(self, port, children, redis, demo) -> None:
        url = f"http://{HOST}:{port}/"
        pids = ", ".join(f"{c.name} {c.process.pid}" for c in children.children)
        redis_line = f"embedded, {redis.url} (pid {redis.pid})" if redis else "from REDIS_URL"
        database = "from DATABASE_URL" if env_str("DATABASE_URL") else str(settings.SQLITE_PATH)
        self.stdout.write("")
        self.stdout.write(self.style.SUCCESS(f"Review desk running at {url}  (Ctrl-C stops it)"))
        self.stdout.write(f"  processes: {pids}")
        self.stdout.write(f"  Redis:     {redis_line}")
        self.stdout.write(f"  database:  {database}")
        if demo is not None:
            if demo.campaign is not None:
                self.stdout.write(f"  demo:      {url}campaigns/{DEMO_SLUG}/")
            write_accounts(self.stdout, demo.passwords, demo.existing_accounts)
        self.stdout.write(f"Sign in at {url}accounts/login/")
        self.stdout.write("")
        self.stdout.flush()
