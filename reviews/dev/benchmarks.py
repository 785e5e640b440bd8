"""Shared pieces of the benchmark commands."""

import resource
import threading
from contextlib import contextmanager
from pathlib import Path

from django.db import connection, connections


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@contextmanager
def throwaway_database(tmp: str | Path):
    """A fresh, migrated database of the configured kind (Django's test-database machinery).

    Benchmarks write hundreds of thousands of rows; they never touch the real data.
    """
    original = connection.settings_dict["NAME"]
    test_settings = connection.settings_dict.setdefault("TEST", {})
    if connection.vendor == "sqlite":
        test_settings["NAME"] = str(Path(tmp) / "bench.sqlite3")
    else:
        test_settings["NAME"] = f"{original}_bench"
    connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    try:
        yield
    finally:
        connection.creation.destroy_test_db(original, verbosity=0)


@contextmanager
def autovacuum_stand_in(tables: list[str], every: float = 10.0):
    """ANALYZE `tables` every `every` seconds while the block runs, when PostgreSQL's autovacuum is off.

    A production server has autovacuum on: it re-analyzes a table after 50 + 10% of its rows
    changed, so the planner sees the judgments a campaign gathers. With it off (this machine's
    server), statistics taken while the tables were empty stay in force and the labeling queries
    degrade into nested scans that grow with every judgment. Yields whether it is standing in.
    """
    if connection.vendor != "postgresql":
        yield False
        return
    with connection.cursor() as cursor:
        cursor.execute("SHOW autovacuum")
        if cursor.fetchone()[0] == "on":
            yield False
            return
    stop = threading.Event()

    def analyze():
        try:
            while not stop.wait(every):
                with connections["default"].cursor() as cursor:
                    cursor.execute("ANALYZE " + ", ".join(tables))
        finally:
            connections["default"].close()  # this thread's own connection

    thread = threading.Thread(target=analyze, name="autovacuum-stand-in", daemon=True)
    thread.start()
    try:
        yield True
    finally:
        stop.set()
        thread.join()
