"""bench_queue: a small real run (gunicorn, a client process, SQLite) ends clean and prints its table."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_a_short_closed_loop_run_prints_the_table_without_duplicates_or_losses(tmp_path):
    env = {**os.environ, "REVIEWS_VAR_DIR": str(tmp_path)}
    env.pop("DATABASE_URL", None)
    args = ["--items", "200", "--labelers", "4", "--duration", "3", "--mode", "closed"]
    result = subprocess.run(
        [sys.executable, "manage.py", "bench_queue", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "bench_queue: sqlite, 200 items, 4 labelers" in result.stdout
    header = "mode cycles cycles/s next p50/p95/p99 ms submit p50/p95/p99 ms errors duplicates over-overlap lost"
    assert header in " ".join(result.stdout.split())
    row = re.search(r"^closed x4 +(\d+) +[\d.]+ +[\d/]+ +[\d/]+ +(\d+) +(\d+) +(\d+) +(\d+)$", result.stdout, re.M)
    assert row is not None, result.stdout
    cycles, errors, duplicates, over_overlap, lost = map(int, row.groups())
    assert cycles > 0
    assert (errors, duplicates, over_overlap, lost) == (0, 0, 0, 0)
    # The throwaway database is gone with its directory; the configured one was never created.
    assert not (tmp_path / "db.sqlite3").exists()
