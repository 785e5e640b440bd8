"""bench_queue's stand-in for autovacuum: fresh planner statistics while the labeling tables grow."""

import time

import pytest
from django.db import connection

from reviews.dev.benchmarks import autovacuum_stand_in


def _analyzed_at(table):
    with connection.cursor() as cursor:
        cursor.execute("SELECT last_analyze FROM pg_stat_user_tables WHERE relname = %s", [table])
        return cursor.fetchone()[0]


@pytest.mark.django_db(transaction=True)
def test_it_analyzes_the_tables_while_it_runs_where_autovacuum_is_off():
    if connection.vendor != "postgresql":
        with autovacuum_stand_in(["reviews_judgment"], every=0.01) as standing_in:
            assert standing_in is False  # SQLite has no planner statistics to refresh
        return
    with connection.cursor() as cursor:
        cursor.execute("SHOW autovacuum")
        autovacuum = cursor.fetchone()[0]
    before = _analyzed_at("reviews_judgment")
    with autovacuum_stand_in(["reviews_judgment", "reviews_answer"], every=0.05) as standing_in:
        # pg_stat's figures arrive shortly after the ANALYZE: wait for them (at most 10 s).
        deadline = time.monotonic() + 10
        while standing_in and _analyzed_at("reviews_judgment") in (None, before) and time.monotonic() < deadline:
            time.sleep(0.05)
    assert standing_in is (autovacuum == "off")
    if standing_in:
        assert _analyzed_at("reviews_judgment") not in (None, before)
