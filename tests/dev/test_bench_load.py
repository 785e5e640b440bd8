"""bench_load: a small real run (gunicorn, labelers and a lead in client processes, Redis and an RQ worker
rescoring meanwhile) ends clean and prints the leads' and labelers' figures."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_a_short_load_run_rescoring_meanwhile_ends_clean(tmp_path):
    env = {**os.environ, "REVIEWS_VAR_DIR": str(tmp_path)}
    env.pop("DATABASE_URL", None)
    env.pop("REDIS_URL", None)
    args = [
        "--items",
        "300",
        "--labelers",
        "4",
        "--leads",
        "1",
        "--duration",
        "8",
        "--pace",
        "1",
        "--rescore-every",
        "3",
    ]
    result = subprocess.run(
        [sys.executable, "manage.py", "bench_load", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "lead errors: none" in out
    runs = re.search(r"rescoring runs during the load: (\d+) succeeded, 0 failed, 0 still queued", out)
    assert runs is not None and int(runs.group(1)) >= 1, out
    assert re.search(r"^/campaigns/bench/ +\d+ +\d+ +\d+$", out, re.M), out
    row = re.search(r"^paced 1s x4 +python +(\d+) +[\d.]+ +[\d/]+ +[\d/]+ +(\d+) +(\d+) +(\d+) +(\d+)$", out, re.M)
    assert row is not None, out
    cycles, errors, duplicates, over_overlap, lost = map(int, row.groups())
    assert cycles > 0 and (errors, duplicates, over_overlap, lost) == (0, 0, 0, 0)
