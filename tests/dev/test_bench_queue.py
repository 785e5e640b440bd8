"""bench_queue: small real runs (gunicorn, a client process or wrk, SQLite) end clean and print their tables."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from reviews.dev import wrk
from reviews.management.commands.bench_queue import Command

ROOT = Path(__file__).resolve().parents[2]
ROW = r"^{mode} +{client} +(\d+) +([\d.]+) +[\d/]+ +[\d/]+ +(\d+) +(\d+) +(\d+) +(\d+)$"


def bench_queue(tmp_path, *args) -> subprocess.CompletedProcess:
    env = {**os.environ, "REVIEWS_VAR_DIR": str(tmp_path)}
    env.pop("DATABASE_URL", None)
    return subprocess.run(
        [sys.executable, "manage.py", "bench_queue", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )


def row(stdout: str, mode: str, client: str) -> tuple[int, float, tuple[int, int, int, int]]:
    """(cycles, cycles/s, (errors, duplicates, over-overlap, lost)) of a mode's row."""
    found = re.search(ROW.format(mode=re.escape(mode), client=client), stdout, re.M)
    assert found is not None, stdout
    cycles, rate, *counts = found.groups()
    return int(cycles), float(rate), tuple(map(int, counts))


@pytest.mark.slow
def test_a_short_closed_loop_run_prints_the_floor_the_cycle_and_their_ratio(tmp_path):
    args = ["--items", "200", "--labelers", "4", "--duration", "3", "--mode", "closed", "--client", "python"]
    result = bench_queue(tmp_path, *args)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "bench_queue: sqlite, 200 items, 4 labelers" in result.stdout
    header = "mode client cycles cycles/s next p50/p95/p99 ms submit p50/p95/p99 ms errors duplicates over-overlap lost"
    assert header in " ".join(result.stdout.split())
    # The floor ran on the dev entry, the cycle on the production one.
    assert "gunicorn reviews.dev.floor: 2 workers" in result.stdout
    assert "gunicorn config.wsgi: 2 workers" in result.stdout
    for mode in ("floor x4", "closed x4"):
        cycles, _, counts = row(result.stdout, mode, "python")
        assert cycles > 0
        assert counts == (0, 0, 0, 0)
    assert re.search(r"^cycle / floor: closed x4 costs [\d.]+x the floor by throughput", result.stdout, re.M)
    assert "client share" in result.stdout
    assert re.search(r"^closed x4 +[\d.]+ +[\d.]+ +- +", result.stdout, re.M), "CPU per cycle, no db on SQLite"
    # The throwaway database is gone with its directory; the configured one was never created.
    assert not (tmp_path / "db.sqlite3").exists()


@pytest.mark.slow
def test_the_floor_alone_prints_no_ratio(tmp_path):
    args = ["--floor", "--items", "20", "--labelers", "2", "--duration", "2", "--client", "python"]
    result = bench_queue(tmp_path, *args)

    assert result.returncode == 0, result.stdout + result.stderr
    cycles, _, counts = row(result.stdout, "floor x2", "python")
    assert cycles > 0 and counts == (0, 0, 0, 0)
    assert "config.wsgi" not in result.stdout
    assert "cycle / floor" not in result.stdout


@pytest.mark.slow
@pytest.mark.skipif(wrk.find_wrk() is None, reason=f"wrk is not installed ({wrk.INSTALL}); CI does without it")
def test_wrk_drives_the_closed_loop_and_the_database_checks_still_hold(tmp_path):
    args = ["--items", "300", "--labelers", "4", "--duration", "3", "--mode", "both", "--client", "wrk"]
    result = bench_queue(tmp_path, *args)

    assert result.returncode == 0, result.stdout + result.stderr
    for mode, client in (("floor x4", "wrk"), ("closed x4", "wrk"), ("paced 2s x4", "python")):
        cycles, _, counts = row(result.stdout, mode, client)
        assert cycles > 0, mode
        assert counts == (0, 0, 0, 0), mode
    assert re.search(r"^closed x4: wrk: \d+ requests in", result.stdout, re.M)


def test_asking_for_wrk_without_it_says_how_to_install_it(monkeypatch):
    monkeypatch.setattr(wrk, "find_wrk", lambda: None)
    with pytest.raises(CommandError, match=re.escape(wrk.INSTALL)):
        call_command("bench_queue", "--client", "wrk")


def test_the_paced_mode_alone_needs_no_wrk(monkeypatch):
    monkeypatch.setattr(wrk, "find_wrk", lambda: None)
    assert Command()._load_generator("wrk", closed=False) is None
    assert Command()._load_generator("python", closed=True) is None
