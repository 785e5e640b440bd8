"""Faults, each with real processes: Redis restarted during labeling, the database connection dropped
mid-request, the web process restarted while leases are live. Nothing is lost in any of them.

(The RQ worker killed mid-rescore is tests/test_scoring_jobs.py::test_a_worker_killed_mid_run_...)
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from http.client import HTTPConnection, HTTPException
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlencode

import pytest
from django.db import OperationalError, connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from reviews.data.importer import import_pool
from reviews.dev.embedded_redis import EmbeddedRedis
from reviews.models import Assignment, FeedbackEvent, Judgment, ScoringRun
from scoring.jobs import rescore_due
from tests import processes
from tests.conftest import PASSWORD, join, jsonl, pool_line
from tests.labeling.test_views_labeler import full_answers
from tests.processes import ROOT, manage_run, process_env

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def submit_data(assignment=None) -> dict:
    """A complete judgment as the compare page posts it (tests.conftest.RUBRIC)."""
    return full_answers()


# -- Redis restarted during labeling ----------------------------------------------------------


@pytest.fixture
def own_redis(settings):
    """A Redis of this test's own (the session's one must not be stopped), pointed at by django-rq."""
    directory = Path(tempfile.mkdtemp(prefix="rf-", dir="/tmp"))
    server = EmbeddedRedis(directory / "redis.sock", directory=directory).start()
    previous = settings.RQ_QUEUES
    settings.RQ_QUEUES = {"default": {"URL": server.url, "DEFAULT_TIMEOUT": 3600}}
    settings.REDIS_URL = server.url
    try:
        yield server
    finally:
        settings.RQ_QUEUES = previous
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)


def test_labeling_goes_on_while_redis_restarts_and_no_rescoring_request_is_lost(campaign, labeler, own_redis):
    import_pool(campaign, jsonl(*(pool_line(f"item-{n}") for n in range(30))))
    campaign.update_settings(user=None, note="rescore often", rescore_every=2)
    client = Client()
    client.force_login(labeler)
    work = reverse("reviews:work", args=[campaign.slug])

    def judge_one() -> None:
        response = client.get(work)
        assert response.status_code == 200
        lease = Assignment.objects.get(user=labeler, status=Assignment.Status.LIVE)
        response = client.post(reverse("reviews:lease_submit", args=[lease.uid]), submit_data(lease))
        assert response.status_code == 302, response.content[:500]
        lease.refresh_from_db()
        assert lease.status == Assignment.Status.SUBMITTED

    for _ in range(2):
        judge_one()
    assert ScoringRun.objects.filter(campaign=campaign).count() == 1  # queued on Redis

    own_redis.stop()
    for _ in range(4):
        judge_one()  # the labeler does not notice
    assert Judgment.objects.filter(annotator__user=labeler).count() == 6
    waiting = ScoringRun.objects.filter(campaign=campaign, status=ScoringRun.Status.QUEUED)
    assert waiting.exists(), "the requests made while Redis was down are recorded as queued runs"

    own_redis.start()  # empty: the job queued before the restart is gone
    # A minute later the schedule (rqcron scoring.cron) re-sends the queued run that Redis lost.
    waiting.update(requested_at=timezone.now() - timedelta(minutes=2))
    rescore_due()
    result = manage_run("rqworker", "--burst", "default", env=process_env(own_redis.url), timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    runs = ScoringRun.objects.filter(campaign=campaign).order_by("id")
    assert runs.filter(status=ScoringRun.Status.QUEUED).count() == 0
    last = runs.filter(status=ScoringRun.Status.SUCCEEDED).last()
    assert last is not None
    # Requests made while one run is queued join it (coalesced); it started after the last judgment, so it saw them all.
    assert last.started_at > Judgment.objects.filter(annotator__user=labeler).order_by("id").last().created_at
    assert FeedbackEvent.objects.filter(campaign=campaign, action="judged").count() == 6


# -- the database connection dropped mid-request ----------------------------------------------


class DropConnection:
    """Cut the database connection just before the request writes its judgment.

    On PostgreSQL the server terminates this connection's backend (pg_terminate_backend, from a second
    connection), so the INSERT meets a dead socket; SQLite has no server, so the driver error is raised
    in its place.
    """

    def __init__(self):
        self.fired = False

    def __call__(self, execute, sql, params, many, context):
        if not self.fired and sql.lstrip().upper().startswith('INSERT INTO "REVIEWS_JUDGMENT"'):
            self.fired = True
            if connection.vendor == "postgresql":
                import psycopg

                pid = context["connection"].connection.info.backend_pid
                with psycopg.connect(_libpq_url(), autocommit=True) as killer:
                    killer.execute("SELECT pg_terminate_backend(%s)", [pid])
                time.sleep(0.2)
            else:
                raise OperationalError("disk I/O error (connection dropped by the test)")
        return execute(sql, params, many, context)


def _libpq_url() -> str:
    return processes.test_database_url().replace("postgres://", "postgresql://", 1)


def test_a_dropped_database_connection_fails_the_request_cleanly_and_the_retry_succeeds(campaign, labeler):
    import_pool(campaign, jsonl(*(pool_line(f"item-{n}") for n in range(3))))
    client = Client(raise_request_exception=False)
    client.force_login(labeler)
    assert client.get(reverse("reviews:work", args=[campaign.slug])).status_code == 200
    lease = Assignment.objects.get(user=labeler, status=Assignment.Status.LIVE)
    url, data = reverse("reviews:lease_submit", args=[lease.uid]), submit_data(lease)
    events = FeedbackEvent.objects.count()

    fault = DropConnection()
    with connection.execute_wrapper(fault):
        response = client.post(url, data)
    assert fault.fired
    assert response.status_code == 500
    assert b"Traceback" not in response.content  # DEBUG is off: an error page, no internals
    connection.close_if_unusable_or_obsolete()

    # Nothing of the submit was written: no judgment, no answers, no event; the lease is still live.
    lease.refresh_from_db()
    assert lease.status == Assignment.Status.LIVE
    assert not Judgment.objects.filter(assignment=lease).exists()
    assert FeedbackEvent.objects.count() == events

    # The browser's retry (the same POST) goes through, once.
    response = client.post(url, data)
    assert response.status_code == 302
    lease.refresh_from_db()
    assert lease.status == Assignment.Status.SUBMITTED
    assert Judgment.objects.filter(assignment=lease).count() == 1
    assert FeedbackEvent.objects.count() == events + 1
    assert client.post(url, data).status_code == 302  # a third press records nothing more
    assert Judgment.objects.filter(assignment=lease).count() == 1


# -- the web process restarted while leases are live -------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Gunicorn:
    """gunicorn serving the project against the test database, on 127.0.0.1."""

    def __init__(self, env: dict, log: Path):
        self.port = _free_port()
        self.env, self.log, self.process = env, log, None

    def start(self) -> "Gunicorn":
        self.port = _free_port()  # a fresh port: the killed process's workers may still hold the old one
        argv = [sys.executable, "-m", "gunicorn", "config.wsgi", "--bind", f"127.0.0.1:{self.port}", "--workers", "2"]
        handle = self.log.open("ab")
        self.process = subprocess.Popen(
            argv, cwd=ROOT, env=self.env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log.read_text()[-2000:]
            try:
                conn = HTTPConnection("127.0.0.1", self.port, timeout=5)
                conn.request("GET", "/accounts/login/")
                if conn.getresponse().status == 200:
                    conn.close()
                    return self
            except (OSError, HTTPException):
                pass
            time.sleep(0.2)
        raise AssertionError(f"gunicorn did not answer: {self.log.read_text()[-2000:]}")

    def kill(self) -> None:
        """SIGKILL: no graceful shutdown, as when a machine or container dies."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)


class Browser:
    def __init__(self, port: int):
        self.port, self.cookies = port, {}

    def request(self, method: str, path: str, form: dict | None = None) -> tuple[int, str, str]:
        conn = HTTPConnection("127.0.0.1", self.port, timeout=30)
        headers = {"Host": f"127.0.0.1:{self.port}"}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        body = None
        if form is not None:
            form = {"csrfmiddlewaretoken": self.cookies.get("csrftoken", ""), **form}
            body = urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            headers["Referer"] = f"http://127.0.0.1:{self.port}{path}"
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        for header in response.headers.get_all("Set-Cookie") or []:
            for name, morsel in SimpleCookie(header).items():
                self.cookies[name] = morsel.value
        text = response.read().decode(errors="replace")
        conn.close()
        return response.status, response.headers.get("Location", ""), text

    def sign_in(self, user) -> None:
        """A session made here (sessions live in the database, which every web process shares)."""
        client = Client()
        client.force_login(user)
        self.cookies["sessionid"] = client.cookies["sessionid"].value
        self.request("GET", "/accounts/login/")  # the CSRF cookie


def test_leases_outlive_a_web_restart_then_expire_and_their_items_return(campaign, labeler, tmp_path):
    from reviews.core.roles import Role
    from reviews.people.accounts import create_user

    import_pool(campaign, jsonl(pool_line("only-item")))
    campaign.update_settings(user=None, note="one judgment per item", overlap_k=1)
    other = join(campaign, create_user("lars", Role.LABELER, password=PASSWORD))[0]
    env = process_env("unix:///nonexistent/redis.sock")  # the same SECRET_KEY: sessions made here are valid there
    server = Gunicorn(env, tmp_path / "gunicorn.log").start()
    try:
        lena, lars = Browser(server.port), Browser(server.port)
        lena.sign_in(labeler)
        lars.sign_in(other)
        work = reverse("reviews:work", args=[campaign.slug])
        assert lena.request("GET", work)[0] == 200
        lease = Assignment.objects.get(user=labeler, status=Assignment.Status.LIVE)
        assert "Nothing to judge" in lars.request("GET", work)[2]  # the only item is leased

        server.kill()
        server.start()  # a new web process: it keeps nothing, the database keeps everything
        lena.port = lars.port = server.port
        status, _, page = lena.request("GET", work)
        assert status == 200 and str(lease.uid) in page  # same session, same lease
        lease.refresh_from_db()
        assert lease.status == Assignment.Status.LIVE

        # The labeler walks away; the lease runs out (its clock moved past the end).
        Assignment.objects.filter(pk=lease.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
        status, _, page = lars.request("GET", work)
        assert status == 200
        taken = Assignment.objects.get(user=other, status=Assignment.Status.LIVE)
        assert taken.item_id == lease.item_id  # the item came back and went to the next labeler
        status, _location, _ = lena.request(
            "POST", reverse("reviews:lease_submit", args=[lease.uid]), submit_data(lease)
        )
        assert status == 302
        assert not Judgment.objects.filter(assignment=lease).exists()  # the stale lease writes nothing
        lars_data = submit_data(taken)
        assert lars.request("POST", reverse("reviews:lease_submit", args=[taken.uid]), lars_data)[0] == 302
        assert Judgment.objects.filter(item_id=lease.item_id).count() == 1
    finally:
        server.kill()
