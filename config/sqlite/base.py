"""Django's SQLite backend, with writers that wait for each other in short steps.

Every transaction starts with BEGIN IMMEDIATE (settings.py), so writers queue at BEGIN. SQLite's
own busy handler makes a waiter sleep 1, 2, 5, 10, 15, 20, 25... ms between attempts: under a
steady stream of short write transactions (labelers' claims and submits, a few ms each) the
waiting worker sleeps past the moment the lock is freed and the CPU idles (a third of it in
bench_queue's closed loop). Here BEGIN is retried every 0.1-1 ms instead, up to the same timeout;
every other statement keeps SQLite's busy handler.
"""

import sqlite3
import time

from django.db import OperationalError
from django.db.backends.sqlite3 import base


class DatabaseWrapper(base.DatabaseWrapper):
    def get_new_connection(self, conn_params):
        conn = super().get_new_connection(conn_params)
        self.busy_timeout_ms = int(conn_params.get("timeout", 5) * 1000)
        return conn

    def _start_transaction_under_autocommit(self):
        if self.transaction_mode != "IMMEDIATE":
            return super()._start_transaction_under_autocommit()
        raw = self.connection
        raw.execute("PRAGMA busy_timeout = 0")
        try:
            deadline = time.monotonic() + self.busy_timeout_ms / 1000
            pause = 0.0001
            while True:
                try:
                    self.cursor().execute("BEGIN IMMEDIATE")  # through Django: logged and counted
                    return
                except OperationalError as exc:
                    busy = getattr(exc.__cause__, "sqlite_errorcode", None) == sqlite3.SQLITE_BUSY
                    if not busy or time.monotonic() >= deadline:
                        raise
                time.sleep(pause)
                pause = min(pause * 2, 0.001)
        finally:
            raw.execute(f"PRAGMA busy_timeout = {self.busy_timeout_ms}")
