"""Fast bulk writes for the import's hot path.

Django's bulk_create/bulk_update spend ~50 µs of Python per object, which caps an import
at ~2,000 items/s; these helpers reserve primary keys up front and send plain tuples
through COPY (PostgreSQL) or multi-row INSERTs (SQLite), which is several times faster. Callers pass attribute names
(`prompt_id`, not `prompt`) and values already in Python types; JSON and datetimes are
adapted here the way Django would.
"""

import functools
import itertools
import sqlite3

import orjson
from django.db import connection, models


def reserve_ids(model: type[models.Model], count: int) -> list[int]:
    """Reserve `count` primary keys of `model`'s table for rows inserted with explicit ids.

    Must run inside the transaction that inserts them: on SQLite that transaction holds the
    write lock (IMMEDIATE mode), so no one else can take the same ids; on PostgreSQL the
    ids come from the table's sequence.
    """
    if count == 0:
        return []
    table = model._meta.db_table
    pk = model._meta.pk.column
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)", [table, pk, count]
            )
            return [row[0] for row in cursor.fetchall()]
        if not connection.in_atomic_block:
            raise RuntimeError("reserve_ids must run inside a transaction")
        cursor.execute(f'SELECT COALESCE(MAX("{pk}"), 0) FROM "{table}"')  # noqa: S608 - names from _meta
        start = cursor.fetchone()[0]
        cursor.execute("SELECT seq FROM sqlite_sequence WHERE name = %s", [table])
        row = cursor.fetchone()
        start = max(start, row[0] if row else 0)
        return list(range(start + 1, start + 1 + count))


def _adapters(model: type[models.Model], attnames: list[str]):
    ops = connection.ops
    adapters = []
    for name in attnames:
        field = next(f for f in model._meta.concrete_fields if f.attname == name)
        if isinstance(field, models.JSONField) and connection.vendor == "sqlite":
            adapters.append(lambda v: None if v is None else orjson.dumps(v).decode())
        elif isinstance(field, models.JSONField):
            adapters.append(lambda v, f=field: None if v is None else ops.adapt_json_value(v, f.encoder))
        elif isinstance(field, models.DateTimeField):
            # Rows of one batch mostly share a timestamp: adapt each distinct value once.
            adapters.append(functools.lru_cache(maxsize=64)(ops.adapt_datetimefield_value))
        else:
            adapters.append(None)
    return adapters


def insert_rows(model: type[models.Model], attnames: list[str], rows: list[tuple]) -> None:
    """INSERT plain tuples (values in `attnames` order): COPY on PostgreSQL, multi-row INSERTs on SQLite."""
    if not rows:
        return
    fields = {f.attname: f for f in model._meta.concrete_fields}
    # Columns the caller leaves out get the model's default (the database has none of Django's).
    defaulted = [f for name, f in fields.items() if name not in attnames and f.has_default() and not f.primary_key]
    if defaulted:
        extra = tuple(f.get_default() for f in defaulted)
        attnames = [*attnames, *(f.attname for f in defaulted)]
        rows = [(*row, *extra) for row in rows]
    columns = ", ".join(connection.ops.quote_name(fields[name].column) for name in attnames)
    adapters = _adapters(model, attnames)
    if any(adapters):
        rows = [tuple(a(v) if a else v for a, v in zip(adapters, row, strict=True)) for row in rows]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # COPY is an order of magnitude faster than executemany's row-by-row INSERTs.
            table = connection.ops.quote_name(model._meta.db_table)
            # The raw cursor bypasses Django's wrapper: errors still surface as django.db errors.
            with connection.wrap_database_errors, cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            _insert_sqlite(cursor, model, columns, len(attnames), rows)


# Rows per multi-row INSERT on SQLite: one statement of a few hundred rows costs ~40% less CPU
# than executemany's row-by-row steps (210,000 answer rows: 0.85 s -> 0.5 s); more rows per
# statement gain nothing. SQLite (3.32+) takes up to 32,766 parameters per statement.
SQLITE_ROWS_PER_INSERT = 500


def _insert_sqlite(cursor, model, columns: str, width: int, rows: list[tuple]) -> None:
    """Multi-row INSERT ... VALUES (...), (...) in chunks under SQLite's parameter limit."""
    limit = connection.connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
    per = max(1, min(SQLITE_ROWS_PER_INSERT, limit // width))
    table = connection.ops.quote_name(model._meta.db_table)
    row_marks = "(" + ", ".join(["?"] * width) + ")"
    head = f"INSERT INTO {table} ({columns}) VALUES "  # noqa: S608 - names from _meta
    full = head + ", ".join([row_marks] * per)
    flatten = itertools.chain.from_iterable
    whole = len(rows) - len(rows) % per
    # The raw sqlite3 cursor: Django's wrapper would rewrite every statement's %s to ?. The rows
    # short of a full chunk go through executemany: a statement per remainder size would fill
    # sqlite3's statement cache with large compiled statements (+30 MB over a 100k import).
    raw = cursor.cursor
    with connection.wrap_database_errors:
        for start in range(0, whole, per):
            raw.execute(full, list(flatten(rows[start : start + per])))
        if whole < len(rows):
            raw.executemany(head + row_marks, rows[whole:])


def update_rows(model: type[models.Model], attnames: list[str], rows: list[tuple]) -> None:
    """UPDATE rows by primary key; each tuple is the new values in `attnames` order, then the pk."""
    if not rows:
        return
    fields = {f.attname: f for f in model._meta.concrete_fields}
    quote = connection.ops.quote_name
    if connection.vendor == "postgresql":
        _update_rows_postgresql(model, [fields[name] for name in attnames], rows)
        return
    assignments = ", ".join(f"{quote(fields[name].column)} = %s" for name in attnames)
    sql = (
        f"UPDATE {quote(model._meta.db_table)} SET {assignments} "  # noqa: S608
        f"WHERE {quote(model._meta.pk.column)} = %s"
    )
    with connection.cursor() as cursor:
        cursor.executemany(sql, rows)


def _update_rows_postgresql(model, fields, rows, chunk: int = 2000) -> None:
    """One UPDATE ... FROM (VALUES ...) per chunk: executemany would send one statement per row."""
    quote = connection.ops.quote_name
    table, pk = quote(model._meta.db_table), quote(model._meta.pk.column)
    names = [f"c{i}" for i in range(len(fields))]
    casts = [f.db_type(connection) for f in fields] + [model._meta.pk.rel_db_type(connection)]
    assignments = ", ".join(f"{quote(f.column)} = v.{n}" for f, n in zip(fields, names, strict=True))
    row_marks = "(" + ", ".join(f"%s::{cast}" for cast in casts) + ")"
    with connection.cursor() as cursor:
        for start in range(0, len(rows), chunk):
            part = rows[start : start + chunk]
            sql = (
                f"UPDATE {table} SET {assignments} FROM (VALUES {', '.join([row_marks] * len(part))}) "  # noqa: S608
                f"AS v({', '.join([*names, 'pk'])}) WHERE {table}.{pk} = v.pk"
            )
            cursor.execute(sql, [value for row in part for value in row])


def execute_in(sql: str, value_lists: list) -> list[tuple] | None:
    """Run SQL whose `{0}`, `{1}`... placeholders each take a list of values (an IN list).

    Plain SQL because the ORM spends more time preparing thousand-element IN lists than
    the database spends answering them. Returns the rows of a SELECT, else None.
    """
    params: list = []
    marks = []
    array = connection.vendor == "postgresql"
    for values in value_lists:
        values = list(values)
        if not values:
            marks.append("NULL")  # IN (NULL) matches nothing
        elif array:
            # One array parameter, not thousands of placeholders for psycopg to split and
            # PostgreSQL to plan (a 200,000-item rescoring's IN-list reads: 21 s → 7 s).
            kind = "bigint" if all(isinstance(v, int) for v in values) else "text"
            marks.append(f"SELECT unnest(%s::{kind}[])")
            params.append(values)
        else:
            marks.append(", ".join(["%s"] * len(values)))
            params.extend(values)
    with connection.cursor() as cursor:
        cursor.execute(sql.format(*marks), params)
        return cursor.fetchall() if cursor.description else None


def select_any(sql: str, params: list, values) -> list[tuple]:
    """Rows of a SELECT whose `{0}` follows the column to match against `values` (`... AND
    external_id {0}`), after `params` for the statement's own %s.

    Index probes on both databases: PostgreSQL gets `= ANY(array)`, which it answers from a
    unique index whatever its statistics, where `IN (SELECT unnest(...))` became a hash join over
    a scan of every row of the campaign once the import had grown the table (60,000 items in:
    23 ms a lookup, rising with the table); SQLite gets an IN list.
    """
    values = list(values)
    if not values:
        return []
    if connection.vendor == "postgresql":
        kind = "bigint" if all(isinstance(v, int) for v in values) else "text"
        condition, params = f"= ANY(%s::{kind}[])", [*params, values]
    else:
        condition, params = "IN (" + ", ".join(["%s"] * len(values)) + ")", [*params, *values]
    with connection.cursor() as cursor:
        cursor.execute(sql.format(condition), params)
        return cursor.fetchall()
