"""bench_queue's compiled load generator: wrk (Debian's wrk 4.1 with LuaJIT) running reviews/dev/wrk_cycle.lua.

A second, compiled client for bench_queue's closed loop (`--client wrk`): a cross-check of the Python
client, and a cheaper one where its CPU would matter (README "Labeling under load" has both costs).
The command signs the labelers in itself and hands their cookies to the script through a config
file; the script's done() writes a JSON summary that `run` reads back.
"""

import json
import math
import resource
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

SCRIPT = Path(__file__).with_name("wrk_cycle.lua")
INSTALL = "apt-get install -y wrk"
# wrk counts a response slower than this as a timeout (and its latency array is sized by it).
TIMEOUT_SECONDS = 10


def find_wrk() -> str | None:
    return shutil.which("wrk")


def write_config(path: Path, *, page: str, form_id: str, message_level: int | None, out: Path, jars) -> None:
    """The script's config: page, form id, acknowledging message level, summary path, a cookie jar a line."""
    lines = [f"page {page}", f"form {form_id}", f"out {out}"]
    if message_level is not None:
        lines.append(f"message {message_level}")
    lines += ["cookies " + "; ".join(f"{k}={v}" for k, v in jar.items()) for jar in jars]
    path.write_text("\n".join(lines) + "\n")


@dataclass
class WrkRun:
    """What one wrk run reports: per labeler its cycles, accepted leases, errors and latencies; wrk's own counts."""

    seconds: float
    cpu_seconds: float
    labelers: list[dict] = field(default_factory=list)
    requests: int = 0
    socket_errors: dict[str, int] = field(default_factory=dict)


def run(wrk: str, *, port: int, config: Path, out: Path, threads: int, duration: float, log: Path) -> WrkRun:
    """Run wrk for `duration` seconds (whole seconds: wrk takes no fractions); its CPU seconds from rusage."""
    seconds = max(1, math.ceil(duration))
    argv = [wrk, "-t", str(threads), "-c", str(threads), "-d", f"{seconds}s", "--timeout", f"{TIMEOUT_SECONDS}s"]
    argv += ["-s", str(SCRIPT), f"http://127.0.0.1:{port}/", "--", str(config)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with open(log, "wb") as output:
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT)  # noqa: S603
        try:
            process.wait(seconds + 60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise RuntimeError(f"wrk did not finish within {seconds + 60}s:\n{log.read_text()}") from None
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if process.returncode != 0 or not out.exists():
        raise RuntimeError(f"wrk exited with {process.returncode} and no summary:\n{log.read_text()}")
    summary = json.loads(out.read_text())
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return WrkRun(
        seconds=summary["duration_us"] / 1e6,
        cpu_seconds=cpu,
        labelers=summary["labelers"],
        requests=summary["requests"],
        socket_errors={k: v for k, v in summary["socket_errors"].items() if v},
    )


def settle(seconds: float = 1.0) -> None:
    """wrk stops with requests in flight; the server finishes them before the database is read."""
    time.sleep(seconds)
