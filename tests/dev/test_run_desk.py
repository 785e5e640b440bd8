"""`make run`: the embedded Redis, the child-process supervision, and run_desk end to end."""

import http.client
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import django_rq
import psutil
import pytest
import redis
from django.conf import settings
from django.core.management import call_command

from reviews.dev.embedded_redis import EmbeddedRedis, EmbeddedRedisError
from reviews.management.commands.run_desk import Children

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def short_dir():
    """A directory under /tmp whose path is short enough for a unix socket."""
    path = Path(tempfile.mkdtemp(prefix="desk-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def gone(process: psutil.Process) -> bool:
    """Exited: not running (psutil also spots a reused pid), or a zombie nobody reaped (a container's PID 1)."""
    try:
        return not process.is_running() or process.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def all_gone(processes: list[psutil.Process], timeout: float = 5) -> bool:
    """Whether every process is gone within `timeout`: a killed process takes a moment to exit."""
    deadline = time.monotonic() + timeout
    while not all(gone(p) for p in processes):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


# -- the embedded Redis ---------------------------------------------------------------------


def test_embedded_redis_starts_answers_ping_and_stops(short_dir):
    socket_path = short_dir / "redis.sock"
    with EmbeddedRedis(socket_path) as server:
        client = redis.Redis.from_url(server.url)
        assert client.ping()
        client.set("k", "v")
        assert client.get("k") == b"v"
        assert client.config_get("save") == {"save": ""}
        assert client.config_get("appendonly") == {"appendonly": "no"}
        assert client.config_get("port") == {"port": "0"}, "no TCP port"
        client.close()
        process, watched = server.process, psutil.Process(server.pid)
    assert process.returncode == 0, "SIGTERM is a clean shutdown"
    assert all_gone([watched])
    assert not socket_path.exists()
    assert not list(short_dir.glob("*.rdb")), "nothing persisted"


def test_embedded_redis_replaces_a_stale_socket_file(short_dir):
    (short_dir / "redis.sock").touch()  # left behind by a run that was killed
    with EmbeddedRedis(short_dir / "redis.sock") as server:
        assert redis.Redis.from_url(server.url).ping()


def test_embedded_redis_refuses_to_take_over_a_live_socket(short_dir):
    with EmbeddedRedis(short_dir / "redis.sock") as first:
        with pytest.raises(EmbeddedRedisError, match="already answers"):
            EmbeddedRedis(short_dir / "redis.sock").start()
        assert redis.Redis.from_url(first.url).ping()


def test_embedded_redis_refuses_a_socket_path_too_long_for_unix_sockets(short_dir):
    with pytest.raises(EmbeddedRedisError, match="longer than 100"):
        EmbeddedRedis(short_dir / ("x" * 100) / "redis.sock").start()


def test_embedded_redis_reports_why_it_did_not_start(short_dir, monkeypatch):
    server = EmbeddedRedis(short_dir / "redis.sock")
    monkeypatch.setattr(server, "command", lambda: [*EmbeddedRedis.command(server), "--no-such-directive", "1"])
    with pytest.raises(EmbeddedRedisError, match=r"exited with code 1 at start: .*no-such-directive"):
        server.start()
    assert not server.running()


def test_the_redis_url_fixture_points_django_rq_at_a_live_redis(redis_url):
    assert settings.RQ_QUEUES["default"]["URL"] == redis_url
    queue = django_rq.get_queue("default")
    assert queue.connection.ping()
    assert queue.count == 0


# -- supervising children --------------------------------------------------------------------


def test_children_stop_in_reverse_order_and_stubborn_ones_are_killed(tmp_path):
    children = Children()
    log = tmp_path / "order.log"
    polite = f"trap 'echo {{name}} >> {log}; exit 0' TERM; while true; do sleep 0.05; done"
    children.start("first", ["sh", "-c", polite.format(name="first")], env=os.environ.copy(), cwd=tmp_path)
    children.start("second", ["sh", "-c", polite.format(name="second")], env=os.environ.copy(), cwd=tmp_path)
    stubborn = children.start(
        "stubborn", ["sh", "-c", "trap '' TERM; sleep 30 & wait"], env=os.environ.copy(), cwd=tmp_path
    )
    time.sleep(0.3)  # let the shells install their traps
    grandchild = psutil.Process(stubborn.process.pid).children()[0]

    problems = children.stop_all(timeout=1)

    assert problems == [f"stubborn (pid {stubborn.process.pid}) did not stop within 1 s and was killed"]
    assert log.read_text().split() == ["second", "first"]
    assert all(c.process.returncode is not None for c in children.children)
    assert all_gone([grandchild]), "the whole process group is killed"


def test_leftovers_of_a_child_that_died_are_cleaned_up(tmp_path):
    children = Children()
    child = children.start("parent", ["sh", "-c", "sleep 30 & sleep 30"], env=os.environ.copy(), cwd=tmp_path)
    time.sleep(0.3)
    orphans = psutil.Process(child.process.pid).children()
    child.process.kill()
    child.process.wait()
    assert children.first_exited() is child
    assert children.stop_all(timeout=1) == []
    assert orphans and all_gone(orphans)


# -- run_desk end to end ---------------------------------------------------------------------


@pytest.mark.parametrize("command", ["run_desk", "seed_demo"])
def test_the_commands_have_help(command, capsys):
    with pytest.raises(SystemExit) as excinfo:
        call_command(command, "--help")
    assert excinfo.value.code == 0
    assert "demo" in capsys.readouterr().out


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http_status(port: int) -> int | None:
    """The status of GET /accounts/login/, or None while nothing answers."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", "/accounts/login/")
        return connection.getresponse().status
    except OSError:
        return None
    finally:
        connection.close()


class Desk:
    """`manage.py run_desk` as a child process, with its output in a file."""

    def __init__(self, var_dir: Path, *, env: dict | None = None):
        self.var_dir, self.port, self.extra_env = var_dir, free_port(), env or {}
        self.log = var_dir / f"run_desk-{self.port}.log"

    def env(self) -> dict:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS_URL", "DATABASE_URL"))}
        env.pop("SECRET_KEY_FILE", None)
        env.update({"REVIEWS_VAR_DIR": str(self.var_dir), "SECRET_KEY": settings.SECRET_KEY, **self.extra_env})
        return env

    def start(self) -> "Desk":
        with open(self.log, "wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "manage.py", "run_desk", "--port", str(self.port)],
                cwd=ROOT,
                env=self.env(),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, like a shell's foreground job
            )
        return self

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_until_serving(self, timeout: float = 120) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"run_desk exited early:\n{self.output()}"
            status = http_status(self.port)
            if status is not None:
                return status
            time.sleep(0.25)
        self.process.kill()
        pytest.fail(f"nothing answered on port {self.port} within {timeout} s:\n{self.output()}")

    def descendants(self) -> list[psutil.Process]:
        return psutil.Process(self.process.pid).children(recursive=True)

    def stop(self, signum=signal.SIGINT, timeout: float = 60) -> int:
        """Signal the process group, as Ctrl-C in a terminal does; return the exit code."""
        os.killpg(self.process.pid, signum)
        return self.process.wait(timeout)


def names(processes) -> str:
    """The command lines of the processes, space-separated."""
    lines = []
    for process in processes:
        try:
            lines.append(" ".join(process.cmdline()))
        except psutil.Error:
            lines.append(f"(pid {process.pid}, gone)")
    return " ".join(lines)


def assert_all_gone(processes) -> None:
    if not all_gone(processes):
        pytest.fail(f"left running: {names([p for p in processes if not gone(p)])}")


def database_rows(var_dir: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(var_dir / "db.sqlite3") as connection:
        return connection.execute(sql).fetchall()


@pytest.mark.slow
def test_run_desk_serves_stops_cleanly_and_a_second_run_loses_nothing(short_dir):
    first = Desk(short_dir).start()
    status = first.wait_until_serving()
    assert 100 <= status < 600
    children = first.descendants()
    assert "redis-server" in names(children)
    assert "rqworker default" in names(children)
    assert "gunicorn config.wsgi" in names(children)
    assert first.stop(signal.SIGINT) == 0, first.output()
    assert_all_gone(children)
    assert not (short_dir / "redis.sock").exists(), "Redis shut down cleanly"
    out = first.output()
    assert f"Review desk running at http://127.0.0.1:{first.port}/" in out
    assert out.count("password:") == 3
    assert "Stopped." in out

    users = dict(database_rows(short_dir, "SELECT username, password FROM auth_user"))
    judgments = database_rows(short_dir, "SELECT COUNT(*) FROM reviews_judgment")
    # Something done between the runs must survive the second one.
    created = subprocess.run(
        [sys.executable, "manage.py", "create_user", "extra", "--role", "labeler"],
        cwd=ROOT,
        env={**first.env(), "REVIEWS_PASSWORD": "another-long-password-1"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert created.returncode == 0, created.stderr

    second = Desk(short_dir).start()
    second.wait_until_serving()
    children = second.descendants()
    assert second.stop(signal.SIGTERM) == 0, second.output()
    assert_all_gone(children)
    out = second.output()
    assert "password:" not in out
    assert "already exist" in out and "nothing to load" in out

    assert database_rows(short_dir, "SELECT COUNT(*) FROM reviews_item") == [(300,)]
    assert database_rows(short_dir, "SELECT COUNT(*) FROM reviews_judgment") == judgments
    after = dict(database_rows(short_dir, "SELECT username, password FROM auth_user"))
    assert set(after) == {*users, "extra"}
    assert all(after[name] == users[name] for name in users), "no password was reset"


@pytest.mark.slow
def test_run_desk_stops_everything_when_a_child_dies(short_dir):
    desk = Desk(short_dir).start()
    desk.wait_until_serving()
    children = desk.descendants()
    worker = next(p for p in children if "rqworker" in " ".join(p.cmdline()))
    worker.kill()
    assert desk.process.wait(60) == 1
    assert_all_gone(children)
    assert "the RQ worker exited unexpectedly (exit code -9); stopped the others" in desk.output()


@pytest.mark.slow
def test_run_desk_uses_redis_url_when_it_is_set(short_dir, redis_url):
    desk = Desk(short_dir, env={"REDIS_URL": redis_url}).start()
    desk.wait_until_serving()
    children = desk.descendants()
    assert "redis-server" not in names(children)
    assert "rqworker default" in names(children)
    assert desk.stop() == 0, desk.output()
    assert_all_gone(children)
    assert "Redis:     from REDIS_URL" in desk.output()


@pytest.mark.slow
def test_run_desk_refuses_a_port_in_use(short_dir):
    desk = Desk(short_dir)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", desk.port))
        busy.listen()
        desk.start()
        assert desk.process.wait(60) == 1
    assert f"CommandError: port {desk.port} on 127.0.0.1 is in use" in desk.output()
    assert not (short_dir / "db.sqlite3").exists(), "it stops before touching anything"
