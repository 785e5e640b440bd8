"""The production layout: two web servers (each with several processes) and two RQ workers on one
database and one Redis. Labelers switch server on every request, judgments trigger rescoring
runs that are split into chunk jobs, and nothing is lost, duplicated or over-assigned."""

import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.db import connections

from reviews.campaigns.setup import create_campaign
from reviews.core.roles import Role
from reviews.data.importer import import_pool
from reviews.dev.synthetic import BENCH_RUBRIC, synthetic_lines
from reviews.management.commands.bench_queue import PASSWORD, Browser, free_port, judgment_form, sign_in
from reviews.models import Assignment, Judgment, Membership, ScoringRun
from reviews.people.accounts import create_user
from tests.conftest import jsonl
from tests.processes import ROOT, process_env

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

LABELERS = 6
CYCLES = 8


def _start_web(port: int, env: dict, log: Path) -> subprocess.Popen:
    argv = [sys.executable, "-m", "gunicorn", "config.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", "2"]
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [*argv, "--no-control-socket"], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()
        try:
            if Browser(port).request("GET", "/accounts/login/")[0] == 200:
                return process
        except OSError:
            time.sleep(0.2)
    pytest.fail(f"the web server on {port} did not start:\n{log.read_text()}")


def _stop(processes) -> None:
    for process in processes:
        process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


def test_two_web_servers_and_two_workers_share_one_database_and_redis(redis_url, tmp_path):
    campaign = create_campaign("multi", "Multi-process", BENCH_RUBRIC)
    import_pool(campaign, jsonl(*synthetic_lines(400, seed=3, labeled_share=0.1)))
    campaign.update_settings(rescore_every=10, note="rescore often")
    users = [create_user(f"worker-{n}", Role.LABELER, password=None) for n in range(LABELERS)]
    # Hashed as the servers hash (the tests' own hasher is a fast one the servers do not accept).
    hashed = PBKDF2PasswordHasher().encode(PASSWORD, "multiprocesssalt", iterations=1000)
    get_user_model().objects.filter(pk__in=[u.pk for u in users]).update(password=hashed)
    Membership.objects.bulk_create(Membership(campaign=campaign, user=u) for u in users)
    k = campaign.settings.overlap_k
    connections.close_all()

    env = process_env(
        redis_url,
        DEBUG="false",
        SECRET_KEY="multi-process-test",
        REVIEWS_VAR_DIR=str(tmp_path),
        SCORING_SPLIT_MIN_ITEMS="100",
        SCORING_SPLIT_CHUNK_ITEMS="150",
    )
    env.pop("SECRET_KEY_FILE", None)
    (tmp_path / "staticfiles").mkdir()
    ports = [free_port(), free_port()]
    processes = []
    try:
        processes += [_start_web(port, env, tmp_path / f"web-{port}.log") for port in ports]
        processes += [
            subprocess.Popen(
                [sys.executable, "manage.py", "rqworker", "default"],
                cwd=ROOT,
                env=env,
                stdout=open(tmp_path / f"worker-{n}.log", "wb"),  # noqa: SIM115 - the child writes it
                stderr=subprocess.STDOUT,
            )
            for n in range(2)
        ]
        accepted, errors = _label(users, ports)
        assert errors == [], errors
        runs = _wait_for_runs(campaign)
    finally:
        _stop(processes)

    logs = "\n".join(p.read_text(errors="replace")[-2000:] for p in sorted(tmp_path.glob("*.log")))
    assert errors == [], logs
    # Every accepted submit is in the database exactly once; nothing else is.
    assert len(accepted) == len(set(accepted)) == LABELERS * CYCLES
    stored = set(map(str, Judgment.objects.filter(assignment__isnull=False).values_list("assignment__uid", flat=True)))
    assert stored == set(accepted)
    # No item was ever leased or judged by more than k labelers.
    for item_id in set(Assignment.objects.values_list("item_id", flat=True)):
        holders = Assignment.objects.filter(item_id=item_id).exclude(status=Assignment.Status.SKIPPED)
        assert holders.values("user").distinct().count() <= k
    # The judgments triggered rescoring runs, split over the workers, and one is in force.
    succeeded = [run for run in runs if run.status == ScoringRun.Status.SUCCEEDED]
    assert succeeded, [(r.id, r.status, r.error) for r in runs]
    assert all("judgments" in r.trigger for r in succeeded)
    worker_logs = [p.read_text(errors="replace") for p in tmp_path.glob("worker-*.log")]
    assert any("default: scoring.chunked.score_job(" in log for log in worker_logs), logs
    campaign.refresh_from_db()
    assert campaign.scoring_run_id == max(r.id for r in succeeded)


def _label(users, ports) -> tuple[list[str], list[str]]:
    """Each labeler signs in on one server, then alternates servers for every page and submit."""
    accepted: list[str] = []
    errors: list[str] = []
    lock = threading.Lock()

    def labeler(n: int, user) -> None:
        try:
            work_through(n, user)
        except Exception as exc:
            with lock:
                errors.append(f"{user.username}: {type(exc).__name__}: {exc}")

    def work_through(n: int, user) -> None:
        rng = random.Random(n)
        browsers = [Browser(port) for port in ports]
        sign_in(browsers[0], user.username)
        browsers[1].cookies = browsers[0].cookies  # one session, two servers
        work = "/campaigns/multi/work/"
        for c in range(CYCLES):
            page, post = browsers[c % 2], browsers[(c + 1) % 2]
            status, _, html = page.request("GET", work)
            form = judgment_form(html, rng) if status == 200 else None
            if form is None:
                with lock:
                    errors.append(f"{user.username}: GET {status}")
                return
            action, uid, data = form
            status, headers, _ = post.request("POST", action, data)
            with lock:
                if status == 302 and headers.get("Location", "").endswith(work):
                    accepted.append(uid)
                else:
                    errors.append(f"{user.username}: POST {status}")
        for browser in browsers:
            browser.close()

    threads = [threading.Thread(target=labeler, args=(n, u)) for n, u in enumerate(users)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=180)
    return accepted, errors


def _wait_for_runs(campaign, seconds: float = 120) -> list[ScoringRun]:
    deadline = time.monotonic() + seconds
    busy = (ScoringRun.Status.QUEUED, ScoringRun.Status.RUNNING)
    while time.monotonic() < deadline:
        runs = list(ScoringRun.objects.filter(campaign=campaign).order_by("id"))
        if runs and not any(run.status in busy for run in runs):
            return runs
        time.sleep(0.2)
    pytest.fail(f"rescoring runs still busy: {[(r.id, r.status, r.phase) for r in runs]}")
