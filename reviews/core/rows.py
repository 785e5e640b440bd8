"""Model instances from one plain-SQL query over several joined tables.

The labelers' hot path runs the same few queries on every request; built through the ORM, each
cost 1-2 ms of CPU to compile (select_related joins, subquery annotations), more than the
database took to answer. A `Joined` query names its tables once (alias, model) and writes the
rest of the SQL itself; the column list and each field's converters (what the ORM applies to a
database value, e.g. a SQLite text to a datetime) are worked out once per process.
"""

import functools
from dataclasses import dataclass

from django.db import connection
from django.db.models import Model


@dataclass(frozen=True)
class Joined:
    """SELECT every column of each (alias, model) in `tables`, then `extra` expressions, `tail`
    being the FROM ... WHERE ... of the query (it defines the aliases)."""

    tables: tuple[tuple[str, type[Model]], ...]
    tail: str
    extra: tuple[str, ...] = ()

    @functools.cached_property
    def _plan(self):
        quote = connection.ops.quote_name
        columns, plans = [], []
        for alias, model in self.tables:
            fields = model._meta.concrete_fields
            columns += [f"{alias}.{quote(f.column)}" for f in fields]
            converters = []
            for f in fields:
                col = f.get_col(alias)
                found = connection.ops.get_db_converters(col) + col.get_db_converters(connection)
                converters.append((col, found))
            plans.append((model, [f.attname for f in fields], converters))
        sql = f"SELECT {', '.join([*columns, *self.extra])} {self.tail}"
        return sql, plans

    def fetch(self, params, *, suffix: str = "") -> list[tuple]:
        """One tuple per row: an instance per table (None where an outer join found no row), then
        the extra values. `suffix`: appended to the SQL (a locking clause, say)."""
        sql, plans = self._plan
        with connection.cursor() as cursor:
            cursor.execute(sql + suffix, params)
            rows = cursor.fetchall()
        out = []
        for row in rows:
            values, start = [], 0
            for model, attnames, converters in plans:
                raw = row[start : start + len(attnames)]
                start += len(attnames)
                if raw[0] is None:  # no primary key: an outer join without a row
                    values.append(None)
                    continue
                converted = []
                for value, (col, found) in zip(raw, converters, strict=True):
                    for converter in found:
                        value = converter(value, col, connection)
                    converted.append(value)
                values.append(model.from_db(connection.alias, attnames, converted))
            out.append((*values, *row[start:]))
        return out


@functools.cache
def _insert_plan(model: type[Model], attnames: tuple[str, ...]):
    fields = {f.attname: f for f in model._meta.concrete_fields}
    given = [fields[name] for name in attnames]
    # Columns left out get what Model.save would write: the field's default ("" for text, None...).
    defaulted = [f for f in fields.values() if f.attname not in attnames and not f.primary_key]
    quote = connection.ops.quote_name
    columns = ", ".join(quote(f.column) for f in [*given, *defaulted])
    marks = ", ".join(["%s"] * (len(given) + len(defaulted)))
    pk = quote(model._meta.pk.column)
    sql = f"INSERT INTO {quote(model._meta.db_table)} ({columns}) VALUES ({marks}) RETURNING {pk}"  # noqa: S608
    return sql, given, defaulted


def insert_row(model: type[Model], **values) -> Model:
    """INSERT one row (attribute names as keywords, the rest defaulted) and return it as an
    instance with its new primary key: Model.objects.create's result, at a fraction of its CPU.
    No signals are sent (no receiver listens to the models the hot path writes)."""
    sql, given, defaulted = _insert_plan(model, tuple(values))
    row = {**values, **{f.attname: f.get_default() for f in defaulted}}
    params = [f.get_db_prep_save(row[f.attname], connection) for f in [*given, *defaulted]]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        pk = cursor.fetchone()[0]
    instance = model(**row)
    instance.pk = pk
    instance._state.adding = False
    instance._state.db = connection.alias
    return instance
