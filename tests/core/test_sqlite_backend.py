"""config.sqlite: writers wait for each other at BEGIN in short steps, up to the usual timeout."""

import threading

import pytest
from django.db import OperationalError, connections, transaction
from django.db.utils import ConnectionHandler, load_backend

ALIAS = "sqlite_backend_test"


@pytest.fixture(autouse=True)
def _own_database_files(django_db_blocker):
    """These tests open their own SQLite files, not the test database."""
    with django_db_blocker.unblock():
        yield
    if hasattr(connections._connections, ALIAS):
        del connections[ALIAS]


class Database:
    """A SQLite file through config.sqlite; each thread connects on its own, as ALIAS."""

    def __init__(self, path, timeout):
        options = {"transaction_mode": "IMMEDIATE", "timeout": timeout}
        filled = ConnectionHandler({"default": {"ENGINE": "config.sqlite", "NAME": str(path), "OPTIONS": options}})
        self.settings = filled.settings["default"]
        with self.connect().cursor() as cursor:
            cursor.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, who TEXT)")

    def connect(self):
        conn = load_backend("config.sqlite").DatabaseWrapper(dict(self.settings), alias=ALIAS)
        connections[ALIAS] = conn  # thread-local, like every Django connection: atomic(using=ALIAS) finds it
        return conn

    def hold_write_lock(self, release: threading.Event, held: threading.Event) -> threading.Thread:
        """A thread that begins a write transaction, inserts a row and commits when told."""

        def run():
            conn = self.connect()
            try:
                with transaction.atomic(using=ALIAS), conn.cursor() as cursor:
                    cursor.execute("INSERT INTO t (who) VALUES ('holder')")
                    held.set()
                    release.wait(10)
            finally:
                conn.close()

        thread = threading.Thread(target=run)
        thread.start()
        assert held.wait(5)
        return thread


def test_a_writer_waits_for_the_holder_and_then_writes(tmp_path):
    db = Database(tmp_path / "db.sqlite3", timeout=5)
    release = threading.Event()
    holder = db.hold_write_lock(release, threading.Event())
    conn = db.connect()
    threading.Timer(0.2, release.set).start()
    with transaction.atomic(using=ALIAS), conn.cursor() as cursor:  # waits until the holder commits
        cursor.execute("SELECT who FROM t")
        seen = [row[0] for row in cursor.fetchall()]
        cursor.execute("INSERT INTO t (who) VALUES ('waiter')")
    holder.join()
    assert seen == ["holder"]  # it began after the holder's commit, so it reads its row
    with conn.cursor() as cursor:
        cursor.execute("SELECT who FROM t ORDER BY id")
        assert [row[0] for row in cursor.fetchall()] == ["holder", "waiter"]
        cursor.execute("PRAGMA busy_timeout")
        assert cursor.fetchone()[0] == 5000  # SQLite's own handler is back for other statements
    conn.close()


def test_a_writer_gives_up_after_the_timeout_with_the_usual_error(tmp_path):
    db = Database(tmp_path / "db.sqlite3", timeout=0.3)
    release = threading.Event()
    holder = db.hold_write_lock(release, threading.Event())
    conn = db.connect()
    try:
        with pytest.raises(OperationalError, match="locked"), transaction.atomic(using=ALIAS):
            pass
        assert not conn.in_atomic_block
        with conn.cursor() as cursor:
            cursor.execute("PRAGMA busy_timeout")
            assert cursor.fetchone()[0] == 300
    finally:
        release.set()
        holder.join()
        conn.close()
