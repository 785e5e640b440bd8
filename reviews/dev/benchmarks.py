"""Shared pieces of the benchmark commands."""

import resource
from contextlib import contextmanager
from pathlib import Path

from django.db import connection


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
