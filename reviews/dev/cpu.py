"""Who spent the machine's CPU during a benchmark run: the load client, the web server, the database.

Read from /proc (Linux): a sample holds the CPU seconds of the gunicorn master and its workers, of
the PostgreSQL backends serving the benchmark's database (their process titles name it), and of the
whole machine; `CpuUse.between` turns two samples and the client's own CPU seconds into a breakdown.
Without /proc the samples are empty and the breakdown says so (None).
"""

import os
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")
TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _stat(pid: int | str) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name (which may hold spaces and parentheses)."""
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()


def _cpu_seconds(fields: list[str]) -> float:
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime (fields 14 and 15)


def _pids() -> list[int]:
    try:
        return [int(p.name) for p in PROC.iterdir() if p.name.isdigit()]
    except OSError:
        return []


def machine_busy_seconds() -> float | None:
    """CPU seconds the machine's cores spent on anything but idling and waiting for I/O, since boot."""
    try:
        first = (PROC / "stat").read_text().split("\n", 1)[0].split()
    except OSError:
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in first[1:9])
    return (user + nice + system + irq + softirq + steal) / TICKS


@dataclass
class CpuSample:
    web: dict[int, float]
    database: dict[int, float]
    machine: float | None


class CpuProbe:
    """Samples gunicorn (the master `web_pid` and its children) and the backends of `database` (PostgreSQL)."""

    def __init__(self, web_pid: int, database: str | None = None):
        self.web_pid = web_pid
        self.database_marker = f" {database} " if database else None

    def sample(self) -> CpuSample:
        web, database = {}, {}
        for pid in _pids():
            fields = _stat(pid)
            if fields is None:
                continue
            if pid == self.web_pid or int(fields[1]) == self.web_pid:
                web[pid] = _cpu_seconds(fields)
            elif self.database_marker and self._serves_database(pid):
                database[pid] = _cpu_seconds(fields)
        return CpuSample(web, database, machine_busy_seconds())

    def _serves_database(self, pid: int) -> bool:
        try:
            title = (PROC / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
        except OSError:
            return False
        return title.startswith("postgres:") and self.database_marker in title


def _spent(start: dict[int, float], end: dict[int, float]) -> float:
    # A process that started during the window (a restarted worker, a new backend) counts from zero.
    return sum(seconds - start.get(pid, 0.0) for pid, seconds in end.items())


@dataclass
class CpuUse:
    """CPU seconds spent during one run's window, by whom; `other` is the rest of the machine's busy time."""

    wall: float
    client: float
    web: float | None
    database: float | None
    machine: float | None

    @classmethod
    def between(cls, start: CpuSample, end: CpuSample, *, wall: float, client: float, database: bool) -> "CpuUse":
        machine = None if start.machine is None or end.machine is None else end.machine - start.machine
        return cls(
            wall=wall,
            client=client,
            web=_spent(start.web, end.web) if end.web else None,
            database=_spent(start.database, end.database) if database and end.database else None,
            machine=machine,
        )

    @property
    def other(self) -> float | None:
        if self.machine is None or self.web is None:
            return None
        return max(0.0, self.machine - self.client - self.web - (self.database or 0.0))

    @property
    def client_share(self) -> float | None:
        """The client's part of all the CPU the machine spent in the window."""
        return self.client / self.machine if self.machine else None

    @property
    def client_cores(self) -> float:
        """How many cores the client kept busy on average (a Python client's threads share one GIL)."""
        return self.client / self.wall if self.wall > 0 else 0.0

    @property
    def server(self) -> float | None:
        """What a cycle costs the server side: gunicorn plus the database's backends."""
        return None if self.web is None else self.web + (self.database or 0.0)
